// Parse.File through the official SDK: upload as bytes and as base64 (the SDK's JSON form),
// attach to an object, read it back and download through the signed URL the server minted,
// then delete with the master key.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { MASTER, Parse, createClass, unique } from './support.mjs';

const PASSWORD = 'correct-horse-battery-9';
const TEXT = 'Consent form, signed 2026-03-01.\nMARKER-sdk-files\n';
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 250, 251, 252];

describe('Parse.File (/files)', () => {
  let className;
  let owner;
  let asOwner;

  before(async () => {
    className = unique('SdkAttachment');
    await createClass(className, (s) => s.addFile('doc').addArray('more'));
    const user = new Parse.User();
    const name = unique('filepatient');
    user.set({ username: name, password: PASSWORD, email: `${name}@example.org` });
    await user.signUp();
    owner = await Parse.User.logIn(name, PASSWORD);
    asOwner = { sessionToken: owner.getSessionToken() };
    assert.ok(asOwner.sessionToken, 'uploads need a session');
  });

  it('uploads bytes and base64, and downloads them again through signed URLs', async () => {
    const bytes = new Parse.File('notes.txt', [...Buffer.from(TEXT)], 'text/plain');
    await bytes.save(asOwner);
    assert.match(bytes.name(), /^[0-9a-f]{32}_notes\.txt$/);
    assert.match(bytes.url(),
      /\/files\/[^/]+\/[0-9a-f]{32}_notes\.txt\?expires=\d+&by=\w+&sess=\w+&sig=/);

    const image = new Parse.File('scan.png', { base64: Buffer.from(PNG).toString('base64') },
      'image/png');
    await image.save(asOwner);
    assert.match(image.name(), /_scan\.png$/);

    const attachment = new Parse.Object(className);
    attachment.set({ doc: bytes, more: [image] });
    const acl = new Parse.ACL(owner);
    attachment.setACL(acl);
    await attachment.save(null, asOwner);

    const fetched = await new Parse.Query(className).get(attachment.id, asOwner);
    const doc = fetched.get('doc');
    assert.equal(doc.name(), bytes.name());
    // A File decoded from the server holds only name and url. The URL is bound to the session
    // that read the object: the download presents that session (getData() sends no headers,
    // so it works only where MINDHARBOR_FILE_URLS_BOUND_TO_SESSION=false).
    const mine = { headers: { 'X-Parse-Session-Token': asOwner.sessionToken } };
    assert.equal(await (await fetch(doc.url(), mine)).text(), TEXT);
    assert.equal((await fetch(doc.url())).status, 403); // the same link, without the session

    const [png] = fetched.get('more');
    const downloaded = await fetch(png.url(), mine);
    assert.equal(downloaded.status, 200);
    assert.equal(downloaded.headers.get('content-type'), 'image/png');
    assert.match(downloaded.headers.get('content-disposition'), /^attachment; filename="scan\.png"$/);
    assert.deepEqual([...new Uint8Array(await downloaded.arrayBuffer())], PNG);

    const forged = new URL(png.url());
    forged.searchParams.set('sig', 'A'.repeat(43));
    assert.equal((await fetch(forged)).status, 403);

    // Anyone else reading the object gets "not found", so never a URL.
    await assert.rejects(new Parse.Query(className).get(attachment.id), (e) => e.code === 101);
  });

  it('refuses a file whose bytes are not what its type says', async () => {
    const lying = new Parse.File('fake.png', [...Buffer.from('not a png at all')], 'image/png');
    await assert.rejects(lying.save(asOwner), (error) => error.code === 130);
  });

  it('deletes a file with the master key', async () => {
    const file = new Parse.File('bye.txt', [...Buffer.from('bye')], 'text/plain');
    await file.save(asOwner);
    const url = file.url();
    const mine = { headers: { 'X-Parse-Session-Token': asOwner.sessionToken } };
    assert.equal((await fetch(url, mine)).status, 200);
    await file.destroy(MASTER);
    assert.equal((await fetch(url, mine)).status, 403);
  });
});
