// @ts-check
/** The entry of the dApp's component: one page per `args.mode`, drawn once, then updated on renders. */
import { onRender, fitHeight } from "./streamlit.js";
import { style, h } from "./dom.js";
import { pledgePage, createPage, actionPage, memberPage, sharePage, setArgs } from "./pages.js";

const PAGES = { pledge: pledgePage, create: createPage, action: actionPage, member: memberPage, share: sharePage };
/** @type {null | (() => void)} */
let refresh = null;
let mode = "";

export function boot() {
  const root = h("div", { className: "sp" });
  document.body.append(root);
  new ResizeObserver(fitHeight).observe(document.body);
  onRender((args, theme) => {
    style(theme);
    setArgs(args);
    try {
      if (!refresh || args.mode !== mode) {
        mode = args.mode;
        root.replaceChildren();
        const page = /** @type {any} */ (PAGES)[mode];
        refresh = page ? page(root) : null;
      } else refresh();
    } catch (e) { // said on the page, never a blank frame
      root.append(h("p", { className: "err" }, `This part of the page failed in your browser: ${e instanceof Error ? e.message : String(e)}. Reload the page.`));
    }
    fitHeight();
  });
}
