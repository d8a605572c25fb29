// What Parse apps and Parse Dashboard read besides data, through the official SDK: the global
// config (Parse.Config), the cloud code registry (Parse.Hooks, Parse.Cloud.getJobsData) and
// /serverInfo.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MASTER, Parse, rejectsWithCode, unique } from './support.mjs';

async function rest(method, path, { master = true, body } = {}) {
  const headers = { 'X-Parse-Application-Id': Parse.applicationId };
  if (master) headers['X-Parse-Master-Key'] = Parse.masterKey;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${Parse.serverURL}/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe('Parse.Config (/config)', () => {
  it('saves with the master key and reads back, master-key-only params hidden from clients', async () => {
    const open = unique('greeting');
    const secret = unique('secret');
    await Parse.Config.save(
      { [open]: 'hello', [secret]: { rotation: 3 } },
      { [secret]: true },
    );
    const config = await Parse.Config.get();
    assert.equal(config.get(open), 'hello');
    assert.equal(config.get(secret), undefined);
    const withMaster = await Parse.Config.get(MASTER);
    assert.deepEqual(withMaster.get(secret), { rotation: 3 });
    // The SDK keeps the last config it read.
    assert.equal(Parse.Config.current().get(open), 'hello');
  });

  it('deletes a parameter with {__op: Delete} and refuses writes without the master key', async () => {
    const name = unique('temporary');
    await Parse.Config.save({ [name]: 1 });
    const { status } = await rest('PUT', 'config', { body: { params: { [name]: { __op: 'Delete' } } } });
    assert.equal(status, 200);
    assert.equal((await Parse.Config.get()).get(name), undefined);
    const refused = await rest('PUT', 'config', { master: false, body: { params: { x: 1 } } });
    assert.equal(refused.status, 403);
  });
});

describe('cloud code registry', () => {
  it('lists the registered functions and triggers (Parse.Hooks), read-only', async () => {
    const functions = await Parse.Hooks.getFunctions();
    assert.ok(functions.some((f) => f.functionName === 'assignProvider'), JSON.stringify(functions));
    const triggers = await Parse.Hooks.getTriggers();
    assert.ok(
      triggers.some((t) => t.className === 'Message' && t.triggerName === 'beforeSave'),
      JSON.stringify(triggers),
    );
    assert.deepEqual(await Parse.Hooks.getFunction('assignProvider'), {
      functionName: 'assignProvider',
    });
    await rejectsWithCode(Parse.Hooks.createFunction('leak', 'https://example.org/hook'), 143);
  });

  it('lists jobs and the schedule (Parse.Cloud.getJobsData, /cloud_code/jobs)', async () => {
    const data = await Parse.Cloud.getJobsData();
    assert.ok(data.jobs.includes('purgeIdempotencyKeys'), JSON.stringify(data));
    assert.ok(Array.isArray(data.in_use));
    const { status, json } = await rest('GET', 'cloud_code/jobs');
    assert.equal(status, 200);
    assert.ok(json.every((job) => data.in_use.includes(job.jobName)), JSON.stringify(json));
  });

  it('answers /serverInfo with a semver version and the features the Dashboard checks', async () => {
    const { json } = await rest('GET', 'serverInfo');
    assert.match(json.parseServerVersion, /^\d+\.\d+\.\d+$/);
    const { features } = json;
    for (const op of ['create', 'read', 'update', 'delete']) {
      assert.equal(features.globalConfig[op], true);
      assert.equal(features.hooks[op], true);
    }
    assert.equal(features.cloudCode.jobs, true);
    assert.equal(features.cloudCode.viewCode, true);
    assert.ok(Object.values(features.logs).some(Boolean));
    const logs = await rest('GET', 'scriptlog?level=error&n=5');
    assert.equal(logs.status, 200);
    assert.ok(Array.isArray(logs.json));
  });
});
