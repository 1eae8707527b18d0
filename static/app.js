// headcount's page script. Plain ES2020, no build step, no globals.
//
// On a signed-in page it keeps #user-count live over Server-Sent Events and
// tells the reader how the connection is doing in #connection-state. It also
// wires the "Copy" button beside the curl command. Every page works without
// it; the script only adds liveness.
(() => {
  'use strict';

  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  const COPIED_FOR_MS = 2000;

  function countWords(n) {
    return n === 1 ? 'person online' : 'people online';
  }

  // liveCount owns one EventSource at a time. The browser reconnects by
  // itself after a dropped stream; when it gives up (the server answered
  // with an error status such as 401 or 503) we ask /api/count whether the
  // session is still good, then either say it has ended or try again later.
  function liveCount(countEl) {
    const labelEl = document.getElementById('user-count-label');
    const stateEl = document.getElementById('connection-state');

    let source = null;
    let retryTimer = 0;
    let giveUps = 0; // consecutive give-ups without an event; drives the backoff
    let stopped = false; // the page is hidden (pagehide) or the session ended
    let ended = false;

    function setState(state, text) {
      if (!stateEl) return;
      stateEl.dataset.state = state;
      stateEl.textContent = text;
    }

    function showCount(data) {
      const n = Number.parseInt(String(data).trim(), 10);
      if (!Number.isFinite(n) || n < 0) return;
      countEl.textContent = String(n);
      if (labelEl) labelEl.textContent = countWords(n);
    }

    function connect() {
      retryTimer = 0;
      if (stopped) return;
      const es = new EventSource('/events');
      source = es;
      es.addEventListener('open', () => {
        if (es === source) setState('live', 'Live');
      });
      es.addEventListener('user count', (e) => {
        if (es !== source) return;
        giveUps = 0;
        setState('live', 'Live');
        showCount(e.data);
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
