// @ts-check
/**
 * The bundle's entry (dapp/component/build/spartacus.js): the whole browser module as one ES
 * module. Inside the dApp's component frame (Streamlit adds `streamlitUrl` to its address) it
 * boots the page; anywhere else (the Chromium vector tests, the benchmarks) it only exports.
 */
import { boot } from "./component.js";

export * from "./crypto.js";
export * from "./calldata.js";
export * from "./forwarder.js";
export * from "./relaynote.js";

if (typeof window !== "undefined" && new URLSearchParams(window.location.search).has("streamlitUrl")) boot();
