// @ts-check
/**
 * The note a campaign seals to its relay service (`config.relayNote`): the organizer's contact,
 * so that the relay can write to them about their campaign. ECIES with eciesjs's defaults
 * (65-byte ephemeral key, HKDF-SHA256, AES-256-GCM, 16-byte nonce), which equal the pinned
 * configuration of Python's `spartacus.keys.unwrap`, of the UTF-8 JSON
 * `{"campaign", "contact": {"email"}, "name", "v": 1}` (keys sorted, compact).
 */
import { encrypt } from "eciesjs";
import { utf8 } from "./primitives.js";
import { checksumAddress } from "./keys.js";

export const RELAY_NOTE_MAX = 1024;

/**
 * The note for `relayKey`: only the organizer's e-mail of their contact fields (the relay needs
 * nothing else to write to them), and the name they sign with.
 * @param {Uint8Array} relayKey @param {{campaign: string, contact: Record<string, string>, name: string}} note
 */
export function sealRelayNote(relayKey, note) {
  if (!note.contact.email) throw new Error("a note to the relay carries the organizer's e-mail");
  const contact = { email: note.contact.email };
  const text = JSON.stringify({ campaign: checksumAddress(note.campaign), contact, name: note.name, v: 1 });
  return encrypt(relayKey, utf8(text));
}
