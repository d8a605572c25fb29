// Full-text search (issue 15) through the official SDK: query.fullText() with its options and
// ordering by $score. Subjects and expected counts are Parse Server's own
// (spec/ParseQuery.FullTextSearch.spec.js, run there on PostgreSQL).

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { MASTER, Parse, createClass, rejectsWithCode, seed } from './support.mjs';
import { unique } from './support.mjs';

const SUBJECTS = [
  'coffee',
  'Coffee Shopping',
  'Baking a cake',
  'baking',
  'Café Con Leche',
  'Сырники',
  'coffee and cream',
  'Cafe con Leche',
];
let subjects;

function q() {
  return new Parse.Query(subjects);
}

before(async () => {
  subjects = unique('SdkText');
  await createClass(subjects, (s) => s.addString('subject').addString('comment'));
  await seed(subjects, SUBJECTS.map((subject) => ({ subject, comment: subject })));
});

describe('query.fullText', () => {
  it('$search', async () => {
    assert.equal((await q().fullText('subject', 'coffee').find(MASTER)).length, 3);
  });

  it('$search, sort and select $score', async () => {
    for (const direction of ['ascending', 'descending']) {
      const results = await q().fullText('subject', 'coffee').select('$score')[direction]('$score').find(MASTER);
      assert.equal(results.length, 3);
      const scores = results.map((r) => r.get('score'));
      assert.ok(scores.every((s) => typeof s === 'number' && s > 0), String(scores));
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    }
  });

  it('$language', async () => {
    assert.equal((await q().fullText('subject', 'leche', { language: 'spanish' }).find(MASTER)).length, 2);
  });

  it('$diacriticSensitive', async () => {
    const found = await q().fullText('subject', 'CAFÉ', { diacriticSensitive: true }).find(MASTER);
    assert.deepEqual(found.map((r) => r.get('subject')), ['Café Con Leche']);
  });

  it('combines with other constraints and count', async () => {
    const query = q().fullText('subject', 'coffee').notEqualTo('subject', 'coffee');
    assert.equal(await query.count(MASTER), 2);
  });

  it('refuses bad input with Parse codes', async () => {
    for (const options of [
      { language: true },
      { caseSensitive: 'string' },
      { caseSensitive: true },
      { diacriticSensitive: 'string' },
      { diacriticSensitive: false },
    ]) {
      const error = await rejectsWithCode(q().fullText('subject', 'leche', options).find(MASTER), Parse.Error.INVALID_JSON);
      assert.match(error.message, /^bad \$text: /);
    }
  });
});
