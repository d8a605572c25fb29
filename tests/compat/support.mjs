// Shared set-up for the Parse JS SDK compatibility suite.
//
// Every *.test.mjs file imports this module first: it points the official SDK at the live
// server named by PARSE_SERVER_URL / PARSE_APP_ID / PARSE_MASTER_KEY and exports small helpers.
// Calls made without options are anonymous (no master key, no session): that is what an app
// without a logged-in user sends. Pass MASTER to a call to use the master key.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import Parse from 'parse/node.js';

const SERVER_URL = process.env.PARSE_SERVER_URL;
const APP_ID = process.env.PARSE_APP_ID || 'mindharbor';
const MASTER_KEY = process.env.PARSE_MASTER_KEY;

if (!SERVER_URL || !MASTER_KEY) {
  throw new Error('Set PARSE_SERVER_URL and PARSE_MASTER_KEY (and optionally PARSE_APP_ID).');
}

Parse.initialize(APP_ID);
Parse.serverURL = SERVER_URL;
Parse.masterKey = MASTER_KEY;
Parse.CoreManager.set('IDEMPOTENCY', false);
// The SDK retries a 5xx up to 5 times with back-off. A 5xx from the server under test is a
// bug to report once, and a retried create could hide or duplicate data, so try once.
Parse.CoreManager.set('REQUEST_ATTEMPT_LIMIT', 1);

export { Parse };

/**
 * "true" or "false": whether the server lets callers without the master key create classes
 * (MINDHARBOR_ALLOW_CLIENT_CLASS_CREATION); the pytest wrapper sets it from the server's
 * settings. Tests whose Parse behaviour depends on it are skipped when it is not set.
 */
export const CLIENT_CLASS_CREATION = process.env.PARSE_CLIENT_CLASS_CREATION;
export const SKIP_UNLESS_CLASS_CREATION_KNOWN =
  !['true', 'false'].includes(CLIENT_CLASS_CREATION) && 'PARSE_CLIENT_CLASS_CREATION is not set';

/** Options for a call made with the master key. */
export const MASTER = Object.freeze({ useMasterKey: true });

/** Options for an explicitly anonymous call (no master key even if a default is set). */
export const ANONYMOUS = Object.freeze({ useMasterKey: false });

let counter = 0;

/** A class name (or any other value) unique to this run: `${prefix}_<random><n>`. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}_${randomBytes(4).toString('hex')}${counter}`;
}

/** Create a class through POST /schemas with the fields that `define(schema)` adds. */
export async function createClass(className, define = () => {}) {
  const schema = new Parse.Schema(className);
  define(schema);
  await schema.save();
  return schema;
}

/** Build unsaved objects of `className` from plain attribute maps. */
export function build(className, rows) {
  return rows.map((attrs) => {
    const object = new Parse.Object(className);
    object.set(attrs);
    return object;
  });
}

/** Save objects of `className` built from plain attribute maps (one /batch call per 20). */
export async function seed(className, rows, options = MASTER) {
  return Parse.Object.saveAll(build(className, rows), options);
}

/** The values of `key` in `objects`, sorted (for order-independent comparisons). */
export function sortedValues(objects, key = 'name') {
  return objects.map((object) => object.get(key)).sort();
}

/** The values of `key` in `objects`, in the order the server returned them. */
export function values(objects, key = 'name') {
  return objects.map((object) => object.get(key));
}

/** Assert that `promise` rejects with a Parse.Error carrying `code`. Returns the error. */
export async function rejectsWithCode(promise, code) {
  let value;
  try {
    value = await promise;
  } catch (error) {
    assert.ok(error instanceof Parse.Error, `expected a Parse.Error, got ${error}`);
    assert.equal(
      error.code,
      code,
      `expected Parse error code ${code}, got ${error.code}: ${error.message}`,
    );
    return error;
  }
  const shown = JSON.stringify(value) ?? String(value);
  assert.fail(
    `expected Parse error code ${code}, but the call resolved with ${shown.slice(0, 300)}`,
  );
}

/** A Date from an ISO string (shorthand for fixtures). */
export function date(iso) {
  return new Date(iso);
}

/** An unfetched object of `className` with id `objectId` (what the SDK sends as a Pointer). */
export function pointerTo(className, objectId) {
  return Parse.Object.extend(className).createWithoutData(objectId);
}
