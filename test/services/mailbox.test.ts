/**
 * The job mailbox's reset: a run that starts over forgets the previous run's messages, but a first
 * run keeps what participants posted while the job still waited in the queue.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JobMailbox } from '../../src/services/jobs/mailbox.js';

describe('job mailbox', () => {
  it('keeps posts that arrived before the first run, forgets a previous run on reset', () => {
    const box = new JobMailbox();
    assert.equal(box.post('host-a', 'join', Buffer.from('early')), true);
    box.reset(); // the first run begins
    box.send('host-a', 'start', Buffer.from('go'));
    assert.equal(box.take('host-a', 'join')?.toString(), 'early');
    assert.equal(box.post('host-a', 'join', Buffer.from('again')), false, 'a taken topic is not taken twice');
    box.reset(); // the job runs again after an outage
    assert.equal(box.read('host-a', 0).length, 0);
    assert.equal(box.post('host-a', 'join', Buffer.from('rerun')), true);
    assert.equal(box.take('host-a', 'join')?.toString(), 'rerun');
  });
});
