// headcount's page script. Plain ES2020, no build step, no globals.
//
// On a signed-in page it keeps the counts (#people-count, #user-count) live
// over Server-Sent Events, keeps the list of who is online (#people-list)
// and a log of comings and goings (#presence-log) up to date, and tells the
// reader how the connection is doing in #connection-state. It also wires
// the "Copy" button beside the curl command. Every page works without it;
// the script only adds liveness.
(() => {
  'use strict';

  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  const COPIED_FOR_MS = 2000;
  const SHOWN_PEOPLE = 12; // avatars shown; "and N more" says the rest
  const LOG_LINES = 10;
  const PRESENCE_URL = '/api/presence?limit=1000';

  function peopleWords(n) {
    return n === 1 ? 'person online' : 'people online';
  }

  function connectionWords(n) {
    return n === 1 ? 'connection' : 'connections';
  }

  function parseCount(data) {
    const n = Number.parseInt(String(data).trim(), 10);
    return Number.isFinite(n) && n >= 0 && String(n) === String(data).trim() ? n : -1;
  }

  // presenceView keeps #people-list, #people-more and #presence-log. The
  // list of who was already online comes from /api/presence, asked for once
  // each stream has started; user events that arrive while it is on its way
  // are applied again on top of it, so none is lost and applying one twice
  // changes nothing (an arrival adds someone not yet listed, a departure
  // removes them). Until the first list arrives the server's own rendering
  // stays.
  function presenceView() {
    const listEl = document.getElementById('people-list');
    if (!listEl) return null;
    const moreEl = document.getElementById('people-more');
    const moreCountEl = document.getElementById('people-more-count');
    const logEl = document.getElementById('presence-log');

    let people = new Map(); // login -> person, in arrival order
    let total = -1; // the latest people count from the stream
    let listed = false; // a list from /api/presence has arrived
    let pending = null; // announcements since the list was asked for
    let asking = 0; // numbers the requests, so only the latest counts

    function displayName(p) {
      return p.name || p.login;
    }

    function render() {
      if (!listed) return;
      const shown = [...people.values()].slice(0, SHOWN_PEOPLE);
      listEl.replaceChildren(
        ...shown.map((p) => {
          const li = document.createElement('li');
          li.className = 'person';
          const img = document.createElement('img');
          img.className = 'person-avatar';
          img.src = p.avatar_url || '/static/favicon.svg';
          img.alt = displayName(p);
          img.title = displayName(p);
          img.width = 40;
          img.height = 40;
          li.append(img);
          return li;
        }),
      );
      const more = Math.max(0, (total >= 0 ? total : people.size) - shown.length);
      if (moreCountEl) moreCountEl.textContent = String(more);
      if (moreEl) moreEl.hidden = more === 0;
    }

    function apply(u) {
      if (u.connected) {
        if (!people.has(u.login)) people.set(u.login, u);
      } else {
        people.delete(u.login);
      }
    }

    function log(u) {
      if (!logEl) return;
      const li = document.createElement('li');
      li.textContent = `${displayName(u)} ${u.connected ? 'joined' : 'left'}`;
      logEl.append(li);
      while (logEl.children.length > LOG_LINES) logEl.children[0].remove();
    }

    return {
      count(n) {
        total = n;
        render();
      },
      announce(data) {
        let u;
        try {
          u = JSON.parse(data);
        } catch (_) {
          return;
        }
        if (!u || typeof u.login !== 'string' || u.login === '' || typeof u.connected !== 'boolean') return;
        apply(u);
        if (pending) pending.push(u);
        log(u);
        render();
      },
      async refresh() {
        const mine = ++asking;
        pending = [];
        let body = null;
        try {
          const res = await fetch(PRESENCE_URL, {
            credentials: 'same-origin',
            headers: { Accept: 'application/json' },
          });
          if (res.ok) body = await res.json();
        } catch (_) {
          body = null;
        }
        if (mine !== asking) return;
        const seen = pending;
        pending = null;
        if (!body || !Array.isArray(body.people)) return;
        people = new Map(body.people.filter((p) => p && typeof p.login === 'string').map((p) => [p.login, p]));
        for (const u of seen) apply(u);
        listed = true;
        render();
      },
    };
  }

  // liveCount owns one EventSource at a time. The browser reconnects by
  // itself after a dropped stream; when it gives up (the server answered
  // with an error status such as 401 or 503) we ask /api/count whether the
  // session is still good, then either say it has ended or try again later.
  function liveCount(countEl) {
    const labelEl = document.getElementById('user-count-label');
    const peopleEl = document.getElementById('people-count');
    const peopleLabelEl = document.getElementById('people-count-label');
    const stateEl = document.getElementById('connection-state');
    const view = presenceView();

    let source = null;
    let retryTimer = 0;
    let giveUps = 0; // consecutive give-ups without an event; drives the backoff
    let stopped = false; // the page is hidden (pagehide) or the session ended
    let ended = false;

    // partial: the server said its counts are only its own best knowledge
    // (its shared count store is unreachable); "Live" then says so.
    let partial = false;
    const PARTIAL_TEXT = 'Live, but partial: this server cannot reach the shared count, so the numbers are its best knowledge';

    function setState(state, text) {
      if (!stateEl) return;
      if (state === 'live' && partial) {
        state = 'partial';
        text = PARTIAL_TEXT;
      }
      stateEl.dataset.state = state;
      stateEl.textContent = text;
    }

    function showCount(data) {
      const n = parseCount(data);
      if (n < 0) return;
      countEl.textContent = String(n);
      if (labelEl) labelEl.textContent = connectionWords(n);
    }

    function showPeople(data) {
      const n = parseCount(data);
      if (n < 0) return;
      if (peopleEl) peopleEl.textContent = String(n);
      if (peopleLabelEl) peopleLabelEl.textContent = peopleWords(n);
      if (view) view.count(n);
    }

    function connect() {
      retryTimer = 0;
      if (stopped) return;
      const es = new EventSource('/events');
      source = es;
      let started = false; // the first people count since (re)opening has come
      es.addEventListener('open', () => {
        if (es !== source) return;
        started = false;
        // A new stream says again if its counts are partial.
        partial = false;
        setState('live', 'Live');
      });
      es.addEventListener('user count', (e) => {
        if (es !== source) return;
        giveUps = 0;
        setState('live', 'Live');
        showCount(e.data);
      });
      es.addEventListener('people count', (e) => {
        if (es !== source) return;
        showPeople(e.data);
        // A stream tells only of what happens after it began: who was
        // already online is the list's to tell, asked for each time the
        // stream (re)opens, since a gap may have hidden comings and goings.
        if (!started && view) view.refresh();
        started = true;
      });
      es.addEventListener('count state', (e) => {
        if (es !== source) return;
        partial = String(e.data).trim() === 'partial';
        setState('live', 'Live');
      });
      es.addEventListener('user', (e) => {
        if (es === source && view) view.announce(e.data);
      });
      es.addEventListener('error', () => {
        if (es !== source) return;
        if (es.readyState === EventSource.CONNECTING) {
          setState('reconnecting', 'Reconnecting…');
        } else if (es.readyState === EventSource.CLOSED) {
          es.close();
          source = null;
          recover();
        }
      });
    }

    async function recover() {
      setState('reconnecting', 'Reconnecting…');
      let status = 0;
      try {
        const res = await fetch('/api/count', {
          credentials: 'same-origin',
          headers: { Accept: 'application/json' },
        });
        status = res.status;
      } catch (_) {
        // The network is down: treat it like any other failure and retry.
      }
      if (stopped) return;
      if (status === 401) {
        endSession();
        return;
      }
      const delay = Math.min(RETRY_FIRST_MS * 2 ** giveUps, RETRY_MAX_MS);
      giveUps += 1;
      retryTimer = setTimeout(connect, delay);
    }

    function endSession() {
      ended = true;
      stopped = true;
      if (!stateEl) return;
      stateEl.dataset.state = 'ended';
      stateEl.textContent = 'Your session has ended. ';
      const link = document.createElement('a');
      link.href = '/';
      link.textContent = 'Sign in again.';
      stateEl.append(link);
    }

    function stop() {
      stopped = true;
      clearTimeout(retryTimer);
      retryTimer = 0;
      if (source) {
        source.close();
        source = null;
      }
    }

    // Closing on pagehide makes a closed tab leave the count at once. If the
    // page comes back from the back/forward cache, join again.
    window.addEventListener('pagehide', stop);
    window.addEventListener('pageshow', (e) => {
      if (!e.persisted || ended || source) return;
      stopped = false;
      giveUps = 0;
      setState('connecting', 'Connecting…');
      connect();
    });

    connect();
  }

  function selectContents(el) {
    const selection = window.getSelection();
    if (!selection) return false;
    const range = document.createRange();
    range.selectNodeContents(el);
    selection.removeAllRanges();
    selection.addRange(range);
    return true;
  }

  function copyButton(button, codeEl) {
    const label = button.textContent;
    let resetTimer = 0;

    function flash(text) {
      button.textContent = text;
      clearTimeout(resetTimer);
      resetTimer = setTimeout(() => {
        button.textContent = label;
      }, COPIED_FOR_MS);
    }

    button.addEventListener('click', async () => {
      const text = codeEl.textContent;
      if (navigator.clipboard && navigator.clipboard.writeText) {
        try {
          await navigator.clipboard.writeText(text);
          flash('Copied');
          return;
        } catch (_) {
          // Not allowed here (an insecure origin, or permission refused): fall back.
        }
      }
      if (!selectContents(codeEl)) return;
      let copied = false;
      try {
        copied = document.execCommand('copy');
      } catch (_) {
        copied = false;
      }
      flash(copied ? 'Copied' : 'Selected');
    });
  }

  const countEl = document.getElementById('user-count');
  if (countEl && typeof EventSource === 'function') {
    liveCount(countEl);
  } else if (countEl) {
    const stateEl = document.getElementById('connection-state');
    if (stateEl) {
      stateEl.dataset.state = 'unsupported';
      stateEl.textContent = 'This browser cannot show live updates; reload for the latest count.';
    }
  }

  const copy = document.getElementById('copy-curl');
  const code = document.getElementById('curl-command');
  if (copy && code) copyButton(copy, code);
})();
