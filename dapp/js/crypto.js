// @ts-check
/** The format-v2 module: everything a page (and the known-answer vectors) needs, in one import. */
export * from "./primitives.js";
export * from "./keys.js";
export * from "./format.js";
// @ts-ignore TS2308: the typedefs these modules share (CampaignContext, ...) are the same types
export * from "./release.js";
// @ts-ignore TS2308 (as above)
export * from "./roster.js";
// @ts-ignore TS2308 (as above)
export * from "./exports.js";
