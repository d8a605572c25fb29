// The Parse profile (issue 15) through the official SDK, against a server started by
// tests/compat/test_parse_profile_sdk.py with PARSE_PROFILE=compat (MINDHARBOR_PARSE_COMPAT=true
// and public uploads) or PARSE_PROFILE=strict (the defaults): each flow a Parse app uses,
// answered as Parse does, or refused with Parse's code by default.

import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';

import { Parse, rejectsWithCode, unique } from '../support.mjs';

const COMPAT = process.env.PARSE_PROFILE === 'compat';
const OIDC_TOKEN = process.env.PARSE_OIDC_TOKEN;
const OIDC_SUBJECT = process.env.PARSE_OIDC_SUBJECT;
Parse.User.enableUnsafeCurrentUser();

beforeEach(async () => {
  if (Parse.User.current()) await Parse.User.logOut().catch(() => {});
});

describe(`Parse profile (${COMPAT ? 'compat' : 'strict'})`, () => {
  it('password policy: short, common and username passwords', async () => {
    const name = unique('pw');
    const attempts = ['short', 'password123', `${name}-and-more`];
    for (const password of attempts) {
      const user = new Parse.User({ username: unique('pw'), password });
      if (password.startsWith(name)) user.setUsername(name);
      if (COMPAT) {
        await user.signUp();
        await Parse.User.logOut();
      } else {
        await rejectsWithCode(user.signUp(), 142);
      }
    }
  });

  it('custom fields on the own _User', async () => {
    // A field name of this run only: both profiles' servers share one database.
    const field = unique('nick');
    const user = await Parse.User.signUp(unique('cf'), 'a long enough passphrase');
    user.set(field, 'Sam');
    if (COMPAT) {
      await user.save();
      const fresh = await new Parse.Query(Parse.User).get(user.id);
      assert.equal(fresh.get(field), 'Sam');
      user.set('emailVerified', true);
      await rejectsWithCode(user.save(), 119);
    } else {
      await rejectsWithCode(user.save(), 119);
    }
  });

  it('anonymous user, then signUp upgrades it', async () => {
    if (!COMPAT) {
      await rejectsWithCode(Parse.AnonymousUtils.logIn(), 252);
      return;
    }
    const anon = await Parse.AnonymousUtils.logIn();
    assert.ok(Parse.AnonymousUtils.isLinked(anon));
    const name = unique('up');
    anon.setUsername(name);
    anon.setPassword('a long enough passphrase');
    await anon.signUp();
    assert.equal(Parse.AnonymousUtils.isLinked(anon), false);
    await Parse.User.logOut();
    const back = await Parse.User.logIn(name, 'a long enough passphrase');
    assert.equal(back.id, anon.id);
  });

  it('linkWith and _unlinkFrom a configured provider', async () => {
    const user = await Parse.User.signUp(unique('ln'), 'a long enough passphrase');
    const linking = user.linkWith('oidc', { authData: { id_token: OIDC_TOKEN } });
    if (!COMPAT) {
      await rejectsWithCode(linking, 119);
      return;
    }
    await linking;
    assert.ok(user._isLinked('oidc'));
    // (a fetch() would drop the SDK's copy of the session token, on Parse Server too)
    const sessionToken = user.getSessionToken();
    const stored = await new Parse.Query(Parse.User).get(user.id, { sessionToken });
    assert.deepEqual(stored.get('authData').oidc, { id: OIDC_SUBJECT });
    await user._unlinkFrom('oidc');
    assert.equal(user._isLinked('oidc'), false);
    const after = await new Parse.Query(Parse.User).get(user.id, { sessionToken });
    assert.equal((after.get('authData') || {}).oidc, undefined);
  });

  it('a file saved without a user', async () => {
    const file = new Parse.File('note.txt', { base64: Buffer.from('hello').toString('base64') });
    if (!COMPAT) {
      await rejectsWithCode(file.save(), 130);
      return;
    }
    await file.save();
    assert.match(file.url(), /sig=/);
    const response = await fetch(file.url());
    assert.equal(await response.text(), 'hello');
  });
});
