// @ts-check
/**
 * The Streamlit components v1 protocol, hardened: a render is taken only from this frame's own
 * parent (the Streamlit page, same origin), and every value is posted to that parent only, with
 * its origin as target. A page that frames or opens the dApp can post messages to this frame;
 * they are ignored, so it can neither steer what a page seals and sends nor read an answer.
 */

/** @param {string} type @param {Record<string, unknown>} [data] */
function post(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, window.location.origin);
}

/** True for a message from this frame's parent, on this origin. @param {MessageEvent} event */
export const fromParent = (event) => event.source === window.parent && event.origin === window.location.origin;

/** Calls `render(args, theme)` for each render of this component by its own parent frame. */
export function onRender(/** @type {(args: any, theme: any) => void} */ render) {
  window.addEventListener("message", (event) => {
    if (!fromParent(event)) return; // a foreign window: ignored
    const msg = event.data;
    if (!msg || msg.type !== "streamlit:render") return;
    render(msg.args || {}, msg.theme || null);
  });
  post("streamlit:componentReady", { apiVersion: 1 });
}

/** Posts the component's value (only what is public: a transaction hash, a signed request, calldata). */
export const setValue = (/** @type {unknown} */ value) => post("streamlit:setComponentValue", { value, dataType: "json" });

let lastHeight = -1;
/** Keeps the frame as tall as its content. */
export function fitHeight() {
  const height = Math.ceil(document.documentElement.scrollHeight);
  if (height !== lastHeight) {
    lastHeight = height;
    post("streamlit:setFrameHeight", { height });
  }
}
