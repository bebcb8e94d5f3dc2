// @ts-check
/** The format-v2 module: everything a page (and the known-answer vectors) needs, in one import. */
export * from "./primitives.js";
export * from "./keys.js";
export * from "./envelope.js";
export * from "./release.js";
export * from "./roster.js";
export * from "./exports.js";
