// @ts-check
/**
 * A member key derived from a wallet's signature, for supporters who would rather not keep a
 * file. The wallet signs (EIP-191 `personal_sign`) a fixed message that names the campaign and the
 * chain (`deriveMessage`); the key is HKDF-SHA256 of the signature (`r ‖ s` of a 65-byte one, the
 * recovery byte left out: wallets write it as 0/1 or 27/28; the whole signature otherwise), salt
 * `spartacus/member-key/v1`, info `<chain id>:<campaign>`, 48 bytes mapped onto a secp256k1
 * scalar without bias (noble's `mapHashToField`, FIPS 186-5 A.2). Primitives from @noble only.
 *
 * Where this fails: the same key comes back only from a wallet that signs the same message the
 * same way every time (RFC 6979 deterministic ECDSA, as most software wallets). Some hardware and
 * smart-contract wallets do not: the key would differ next time and the roster could not be read.
 * So the page asks for a second signature and compares it with the first before anything is
 * sealed or sent (`sameSignature`).
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { mapHashToField } from "@noble/curves/abstract/modular.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex, toHex, utf8, InputError } from "./primitives.js";
import { checksumAddress, keyPairFromSecret } from "./keys.js";

export const DERIVE_SALT = "spartacus/member-key/v1";

/** The message a wallet signs to make the member key of `campaign` on `chainId` (the same bytes every time). */
export function deriveMessage(/** @type {string} */ campaign, /** @type {number} */ chainId) {
  return [
    "Spartacus member key, v1",
    "",
    `Campaign: ${checksumAddress(campaign)}`,
    `Chain: ${chainId}`,
    "",
    "Signing this makes your member key for this one campaign. It sends nothing and costs nothing.",
    "Sign it only on a Spartacus page: whoever holds this signature can read the roster as you.",
  ].join("\n");
}

/** The signature's bytes that make the key (r ‖ s of a 65-byte signature). @param {string} signature */
function keyMaterial(signature) {
  if (!/^0x([0-9a-fA-F]{2})+$/.test(signature || "")) throw new InputError("the wallet's signature is not hex: sign again");
  const sig = fromHex(signature);
  if (sig.length < 64) throw new InputError(`the wallet's signature is ${sig.length} bytes: too short to make a key from`);
  return sig.length === 65 ? sig.slice(0, 64) : sig;
}

/** The member key a signature of `deriveMessage(campaign, chainId)` makes (the same signature, the same key). */
export function keyFromSignature(/** @type {string} */ signature, /** @type {string} */ campaign, /** @type {number} */ chainId) {
  const okm = hkdf(sha256, keyMaterial(signature), utf8(DERIVE_SALT), utf8(`${chainId}:${checksumAddress(campaign)}`), 48);
  return keyPairFromSecret(mapHashToField(okm, secp256k1.Point.Fn.ORDER));
}

/** True when two signatures make the same key (a wallet that signs deterministically). */
export const sameSignature = (/** @type {string} */ a, /** @type {string} */ b) => toHex(keyMaterial(a)) === toHex(keyMaterial(b));
