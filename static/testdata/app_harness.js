// Runs static/app.js in a fresh V8 context per scenario, with small fakes for
// the DOM, EventSource, fetch, timers and the clipboard, and checks what the
// script does. Usage: node app_harness.js path/to/app.js
// Prints one line per scenario: "ok\t<name>" or "FAIL\t<name>\t<reason>";
// exits 1 if any scenario failed. app_test.go turns the lines into subtests.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const vm = require('node:vm');

const source = fs.readFileSync(process.argv[2], 'utf8');

class FakeNode {
  constructor(tag, id = '') {
    this.tagName = tag.toUpperCase();
    this.id = id;
    this.dataset = {};
    this.children = [];
    this.listeners = {};
    this.own = '';
    this.href = '';
    this.hidden = false;
    this.parent = null;
  }

  replaceChildren(...nodes) {
    this.own = '';
    this.children = [];
    this.append(...nodes);
  }

  remove() {
    if (!this.parent) return;
    this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }

  get textContent() {
    return this.own + this.children.map((c) => c.textContent).join('');
  }

  set textContent(v) {
    this.own = String(v);
    this.children = [];
  }

  append(...nodes) {
    for (const n of nodes) {
      if (typeof n === 'string') {
        this.children.push({ textContent: n });
        continue;
      }
      n.parent = this;
      this.children.push(n);
    }
  }

  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }

  // dispatch calls every listener and waits for the promises async ones return.
  async dispatch(type, event = {}) {
    await Promise.all((this.listeners[type] || []).map((fn) => fn({ type, ...event })));
  }
}

// newWorld builds the fakes for one scenario. signedIn decides whether the
// page has the live-count elements.
function newWorld({ signedIn = true, clipboard = 'ok', names = true } = {}) {
  const w = {
    sources: [],
    fetches: [],
    fetchReplies: [],
    timers: new Map(),
    nextTimer: 1,
    clipboardWrites: [],
    selected: null,
    execCommands: [],
    els: {},
  };

  const add = (tag, id, text = '') => {
    const el = new FakeNode(tag, id);
    el.textContent = text;
    w.els[id] = el;
    return el;
  };
  if (signedIn) {
    add('span', 'people-count', '1');
    add('span', 'people-count-label', 'person online');
    add('span', 'user-count', '2');
    add('span', 'user-count-label', 'connections');
    if (names) {
      add('ul', 'people-list');
      add('p', 'people-more').hidden = true;
      add('span', 'people-more-count', '0');
      add('ol', 'presence-log');
    }
    add('span', 'connection-state', 'Connecting…').dataset.state = 'connecting';
    add('code', 'curl-command', 'curl -N -H "Authorization: Bearer abc" http://localhost:8080/events');
    add('button', 'copy-curl', 'Copy');
  }

  class EventSource {
    constructor(url) {
      this.url = url;
      this.readyState = EventSource.CONNECTING;
      this.listeners = {};
      this.closed = false;
      w.sources.push(this);
    }

    addEventListener(type, fn) {
      (this.listeners[type] ||= []).push(fn);
    }

    close() {
      this.readyState = EventSource.CLOSED;
      this.closed = true;
    }

    open() {
      this.readyState = EventSource.OPEN;
      this.fire('open', {});
    }

    message(data) {
      this.fire('user count', { data });
    }

    state(data) {
      this.fire('count state', { data });
    }
    people(data) {
      this.fire('people count', { data });
    }

    user(login, connected, name = '') {
      this.fire('user', { data: JSON.stringify({ login, name, avatar_url: `https://a.example/${login}`, connected, user_count: 1, people_count: 1 }) });
    }

    // fail simulates the browser reporting an error: reconnecting (it will
    // retry by itself) or given up (an HTTP error status).
    fail(givenUp) {
      this.readyState = givenUp ? EventSource.CLOSED : EventSource.CONNECTING;
      this.fire('error', {});
    }

    fire(type, event) {
      for (const fn of this.listeners[type] || []) fn({ type, ...event });
    }
  }
  EventSource.CONNECTING = 0;
  EventSource.OPEN = 1;
  EventSource.CLOSED = 2;

  const windowNode = new FakeNode('window');
  windowNode.getSelection = () => ({
    removeAllRanges() {},
    addRange(range) {
      w.selected = range.node;
    },
  });

  const document = {
    getElementById: (id) => w.els[id] || null,
    createElement: (tag) => new FakeNode(tag),
    createRange: () => ({
      node: null,
      selectNodeContents(n) {
        this.node = n;
      },
    }),
    execCommand(cmd) {
      w.execCommands.push(cmd);
      return false;
    },
  };

  const navigator = {};
  if (clipboard !== 'none') {
    navigator.clipboard = {
      writeText(text) {
        if (clipboard === 'denied') return Promise.reject(new Error('NotAllowedError'));
        w.clipboardWrites.push(text);
        return Promise.resolve();
      },
    };
  }

  w.globals = {
    window: windowNode,
    document,
    navigator,
    EventSource,
    console,
    fetch(url, opts) {
      w.fetches.push({ url, opts });
      const reply = w.fetchReplies.shift();
      if (reply === undefined) return Promise.reject(new Error('unexpected fetch'));
      if (reply === 'network') return Promise.reject(new TypeError('Failed to fetch'));
      if (typeof reply === 'object') {
        // A deferred reply: the scenario resolves it when it wants.
        return reply.promise;
      }
      return Promise.resolve({ status: reply, ok: reply >= 200 && reply < 300, json: async () => ({ user_count: 1 }) });
    },
    setTimeout(fn, delay) {
      const id = w.nextTimer++;
      w.timers.set(id, { fn, delay });
      return id;
    },
    clearTimeout(id) {
      w.timers.delete(id);
    },
  };

  w.run = () => {
    const ctx = vm.createContext({ ...w.globals });
    const before = Object.keys(ctx).sort();
    vm.runInContext(source, ctx, { filename: 'app.js' });
    w.leaked = Object.keys(ctx).sort().filter((k) => !before.includes(k));
    return w;
  };

  // fireOnlyTimer runs the single pending timer and returns its delay.
  w.fireOnlyTimer = () => {
    assert.equal(w.timers.size, 1, `pending timers: ${w.timers.size}`);
    const [[id, t]] = w.timers;
    w.timers.delete(id);
    t.fn();
    return t.delay;
  };

  w.last = () => w.sources[w.sources.length - 1];
  // avatars returns the alt texts of the avatars shown.
  w.avatars = () => w.els['people-list'].children.map((li) => li.children[0].alt);
  w.logLines = () => w.els['presence-log'].children.map((li) => li.textContent);
  // deferPresence queues an /api/presence reply of people, sent by the
  // returned function.
  w.deferPresence = (people) => {
    let send;
    const promise = new Promise((resolve) => {
      send = () => resolve({ status: 200, ok: true, json: async () => ({ user_count: people.length, people_count: people.length, people }) });
    });
    w.fetchReplies.push({ promise });
    return send;
  };
  w.state = () => [w.els['connection-state'].dataset.state, w.els['connection-state'].textContent];
  return w;
}

// settle lets the script's awaited promises (fetch, clipboard) finish.
const settle = () => new Promise((resolve) => setImmediate(resolve));

const scenarios = {
  'signed out page opens no stream and leaks no globals'() {
    const w = newWorld({ signedIn: false }).run();
    assert.equal(w.sources.length, 0);
    assert.deepEqual(w.leaked, []);
  },

  'signed in page opens the events stream and leaks no globals'() {
    const w = newWorld().run();
    assert.equal(w.sources.length, 1);
    assert.equal(w.last().url, '/events');
    assert.deepEqual(w.leaked, []);
    assert.deepEqual(w.state(), ['connecting', 'Connecting…']);
  },

  'open and events show Live and the count with the right words'() {
    const w = newWorld().run();
    const es = w.last();
    es.open();
    assert.deepEqual(w.state(), ['live', 'Live']);
    es.message('1');
    assert.equal(w.els['user-count'].textContent, '1');
    assert.equal(w.els['user-count-label'].textContent, 'connection');
    es.message('3');
    assert.equal(w.els['user-count'].textContent, '3');
    assert.equal(w.els['user-count-label'].textContent, 'connections');
    es.message('0');
    assert.equal(w.els['user-count-label'].textContent, 'connections');
    w.fetchReplies.push(503);
    es.people('1');
    assert.equal(w.els['people-count'].textContent, '1');
    assert.equal(w.els['people-count-label'].textContent, 'person online');
    es.people('4');
    assert.equal(w.els['people-count'].textContent, '4');
    assert.equal(w.els['people-count-label'].textContent, 'people online');
    es.people('x');
    assert.equal(w.els['people-count'].textContent, '4');
  },

  'a partial count is said in words until the server says it is exact again'() {
    const w = newWorld().run();
    const es = w.last();
    es.open();
    es.message('3');
    es.state('partial');
    assert.equal(w.state()[0], 'partial');
    assert.match(w.state()[1], /partial/);
    es.message('4');
    assert.equal(w.state()[0], 'partial', 'a count during the outage stays partial');
    assert.equal(w.els['user-count'].textContent, '4');
    es.state('exact');
    assert.deepEqual(w.state(), ['live', 'Live']);
    es.state('partial');
    es.open();
    assert.deepEqual(w.state(), ['live', 'Live'], 'a new stream starts exact until told otherwise');
  },

  'first event alone makes the state Live'() {
    const w = newWorld().run();
    w.last().message('5');
    assert.deepEqual(w.state(), ['live', 'Live']);
    assert.equal(w.els['user-count'].textContent, '5');
  },

  'garbage data leaves the count alone'() {
    const w = newWorld().run();
    w.last().message('7');
    w.last().message('<b>x</b>');
    w.last().message('');
    assert.equal(w.els['user-count'].textContent, '7');
  },

  'a dropped stream shows Reconnecting and lets the browser retry'() {
    const w = newWorld().run();
    const es = w.last();
    es.open();
    es.fail(false);
    assert.deepEqual(w.state(), ['reconnecting', 'Reconnecting…']);
    assert.equal(w.sources.length, 1, 'no second EventSource while the browser retries');
    assert.equal(w.fetches.length, 0);
    es.open();
    assert.deepEqual(w.state(), ['live', 'Live']);
  },

  async 'a 401 after the stream gives up ends the session'() {
    const w = newWorld().run();
    const es = w.last();
    w.fetchReplies.push(401);
    es.fail(true);
    await settle();
    assert.equal(w.fetches.length, 1);
    assert.equal(w.fetches[0].url, '/api/count');
    assert.equal(w.fetches[0].opts.credentials, 'same-origin');
    const [state, text] = w.state();
    assert.equal(state, 'ended');
    assert.equal(text, 'Your session has ended. Sign in again.');
    const link = w.els['connection-state'].children[0];
    assert.equal(link.tagName, 'A');
    assert.equal(link.href, '/');
    assert.equal(w.timers.size, 0, 'no retry after the session ended');
    assert.equal(w.sources.length, 1);
  },

  async 'other failures retry with a capped doubling backoff'() {
    const w = newWorld().run();
    const delays = [];
    const replies = [503, 'network', 200, 503, 429, 503, 503, 503];
    for (const reply of replies) {
      w.fetchReplies.push(reply);
      w.last().fail(true);
      await settle();
      assert.equal(w.state()[0], 'reconnecting');
      const n = w.sources.length;
      delays.push(w.fireOnlyTimer());
      assert.equal(w.sources.length, n + 1, 'a new EventSource after the delay');
      assert.equal(w.last().url, '/events');
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.ok(w.sources.slice(0, -1).every((s) => s.closed), 'given-up sources are closed');
  },

  async 'an event resets the backoff'() {
    const w = newWorld().run();
    for (const want of [1000, 2000]) {
      w.fetchReplies.push(503);
      w.last().fail(true);
      await settle();
      assert.equal(w.fireOnlyTimer(), want);
    }
    w.last().message('2');
    w.fetchReplies.push(503);
    w.last().fail(true);
    await settle();
    assert.equal(w.fireOnlyTimer(), 1000);
  },

  async 'the first list comes from /api/presence; announcements on its way are neither lost nor applied twice'() {
    const w = newWorld().run();
    const es = w.last();
    es.open();
    es.message('3');
    const send = w.deferPresence([
      { login: 'ada', name: 'Ada Lovelace', avatar_url: 'https://a.example/ada', streams: 1 },
      { login: 'bob', name: '', avatar_url: 'https://a.example/bob', streams: 2 },
    ]);
    es.people('2');
    assert.equal(w.fetches.length, 1);
    assert.equal(w.fetches[0].url, '/api/presence?limit=1000');
    // While the list is on its way: carol arrives (the list may or may
    // not have her), bob leaves (the list may still have him).
    es.user('carol', true, 'Carol Shaw');
    es.user('bob', false);
    assert.deepEqual(w.avatars(), [], 'no list before the first one arrives');
    send();
    await settle();
    await settle();
    assert.deepEqual(w.avatars(), ['Ada Lovelace', 'Carol Shaw']);
    const img = w.els['people-list'].children[0].children[0];
    assert.equal(img.title, 'Ada Lovelace');
    assert.equal(img.src, 'https://a.example/ada');
    assert.deepEqual(w.logLines(), ['Carol Shaw joined', 'bob left']);
    // Later announcements apply to the list; a repeat changes nothing.
    es.user('carol', true, 'Carol Shaw');
    es.user('dan', true);
    assert.deepEqual(w.avatars(), ['Ada Lovelace', 'Carol Shaw', 'dan']);
    es.user('ada', false, 'Ada Lovelace');
    assert.deepEqual(w.avatars(), ['Carol Shaw', 'dan']);
    assert.equal(w.fetches.length, 1, 'one list per stream');
    // A reconnected stream asks again: it may have missed comings and goings.
    es.fail(false);
    es.open();
    w.deferPresence([]);
    es.people('0');
    assert.equal(w.fetches.length, 2);
  },

  async 'the first dozen avatars, then and N more'() {
    const w = newWorld().run();
    const es = w.last();
    const people = [];
    for (let i = 0; i < 15; i++) people.push({ login: `u${i}`, name: '', avatar_url: '', streams: 1 });
    const send = w.deferPresence(people);
    es.people('15');
    send();
    await settle();
    await settle();
    assert.equal(w.avatars().length, 12);
    assert.equal(w.avatars()[0], 'u0');
    assert.equal(w.els['people-more'].hidden, false);
    assert.equal(w.els['people-more-count'].textContent, '3');
    es.people('12');
    assert.equal(w.els['people-more'].hidden, true);
  },

  'the log keeps the last ten lines'() {
    const w = newWorld().run();
    const es = w.last();
    w.fetchReplies.push(503);
    es.people('1');
    for (let i = 0; i < 13; i++) es.user(`u${i}`, i % 2 === 0);
    const lines = w.logLines();
    assert.equal(lines.length, 10);
    assert.equal(lines[0], 'u3 left');
    assert.equal(lines[9], 'u12 joined');
    es.fire('user', { data: 'not json' });
    es.fire('user', { data: '{"login":""}' });
    assert.equal(w.logLines().length, 10);
  },

  'a count-only page asks for no list'() {
    const w = newWorld({ names: false }).run();
    const es = w.last();
    es.people('3');
    es.user('ada', true);
    assert.equal(w.fetches.length, 0);
    assert.equal(w.els['people-count'].textContent, '3');
  },

  'pagehide closes the stream at once'() {
    const w = newWorld().run();
    const es = w.last();
    es.open();
    w.globals.window.listeners.pagehide.forEach((fn) => fn({ persisted: false }));
    assert.equal(es.closed, true);
    assert.equal(w.sources.length, 1);
  },

  async 'pagehide during a backoff cancels the retry'() {
    const w = newWorld().run();
    w.fetchReplies.push(503);
    w.last().fail(true);
    await settle();
    assert.equal(w.timers.size, 1);
    w.globals.window.listeners.pagehide.forEach((fn) => fn({ persisted: false }));
    assert.equal(w.timers.size, 0);
    assert.equal(w.sources.length, 1);
  },

  'a page restored from the back-forward cache joins again'() {
    const w = newWorld().run();
    const win = w.globals.window;
    win.listeners.pagehide.forEach((fn) => fn({ persisted: true }));
    win.listeners.pageshow.forEach((fn) => fn({ persisted: true }));
    assert.equal(w.sources.length, 2);
    assert.equal(w.sources[0].closed, true);
    assert.equal(w.last().closed, false);
    assert.deepEqual(w.state(), ['connecting', 'Connecting…']);
  },

  async 'copy writes the curl command to the clipboard and says Copied'() {
    const w = newWorld().run();
    const button = w.els['copy-curl'];
    await button.dispatch('click');
    assert.deepEqual(w.clipboardWrites, [w.els['curl-command'].textContent]);
    assert.equal(button.textContent, 'Copied');
    w.fireOnlyTimer();
    assert.equal(button.textContent, 'Copy');
  },

  async 'copy falls back to selecting the text when the clipboard is refused'() {
    const w = newWorld({ clipboard: 'denied' }).run();
    await w.els['copy-curl'].dispatch('click');
    assert.equal(w.selected, w.els['curl-command']);
    assert.deepEqual(w.execCommands, ['copy']);
    assert.equal(w.els['copy-curl'].textContent, 'Selected');
  },

  async 'copy falls back to selecting the text without a clipboard API'() {
    const w = newWorld({ clipboard: 'none' }).run();
    await w.els['copy-curl'].dispatch('click');
    assert.equal(w.selected, w.els['curl-command']);
  },
};

(async () => {
  let failed = 0;
  for (const [name, fn] of Object.entries(scenarios)) {
    try {
      await fn();
      console.log(`ok\t${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL\t${name}\t${String(err && err.message).replace(/\s+/g, ' ')}`);
    }
  }
  process.exitCode = failed ? 1 : 0;
})();
