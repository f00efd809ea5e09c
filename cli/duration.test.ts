import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from './duration.ts';

test('durations as kubectl writes them', () => {
  const rows: Array<[string, number]> = [
    ['5s', 5_000], // seconds
    ['5m', 300_000], // minutes
    ['2h', 7_200_000], // hours
    ['1h30m', 5_400_000], // combined parts add up
    ['500ms', 500], // milliseconds, not minutes
    ['1d', 86_400_000], // days
    ['1.5m', 90_000], // fractions
    [' 10s ', 10_000], // surrounding blanks from scripts
  ];
  for (const [text, ms] of rows) assert.equal(parseDuration(text), ms, text);
});

test('malformed durations are refused with a message that shows how to write one', () => {
  const rows: Array<[string, RegExp]> = [
    ['5', /no unit: say 5s, 5m or 5h/], // a bare number is ambiguous
    ['', /empty duration/],
    ['5x', /not a duration: "5x".*units are ms, s, m, h, d/], // unknown unit
    ['-5m', /not a duration/], // negative
    ['5m3', /at "3"/], // trailing garbage is pointed at
    ['0s', /is zero/],
  ];
  for (const [text, message] of rows) assert.throws(() => parseDuration(text), message, text);
});
