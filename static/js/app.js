/* Sessiondesk: the little script the pages need. Plain ES2017, no modules.
 *
 * - the live cursor: every websocket (re)connect resumes after the last event seen
 * - countdowns driven by the server's clock (S10), ticking every second
 * - keyboard: j / k to move between conversations, r to reply, Ctrl+Enter to send
 * - the composer's character counter, thread scrolling, the sandbox's send form
 *
 * Everything works on elements htmx swaps in later, so handlers are delegated to
 * the document and state lives in data attributes. The page sends a CSP without
 * 'unsafe-inline' or 'unsafe-eval': nothing here builds code from strings.
 */
(function () {
  'use strict';

  var SECOND = 1000;
  var HOUR = 3600 * SECOND;

  // ---------------------------------------------------------------- live cursor

  // The ws extension asks htmx.createWebSocket for every connect and reconnect.
  // This script runs (deferred) after htmx and the extension and before
  // DOMContentLoaded, so the override is in place before the first socket opens.
  function liveCursor() {
    var el = document.getElementById('live-cursor');
    return el ? el.getAttribute('data-last-event-id') : null;
  }

  function withCursor(url) {
    var after = liveCursor();
    if (after === null || after === '') {
      return url;
    }
    try {
      var u = new URL(url, window.location.href);
      u.searchParams.set('after', after);
      return u.toString();
    } catch (e) {
      return url;
    }
  }

  if (window.htmx) {
    window.htmx.createWebSocket = function (url) {
      var s = new WebSocket(withCursor(url));
      s.binaryType = window.htmx.config.wsBinaryType;
      return s;
    };
  }

  // ----------------------------------------------------------------- countdowns

  // offset = server clock - browser clock, from the freshest data-server-now seen.
  var clockOffset = 0;
  var synced = typeof WeakSet === 'function' ? new WeakSet() : null;
  var lastSessionEnded = 0;

  function syncClock() {
    var els = document.querySelectorAll('[data-server-now]');
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (synced ? synced.has(el) : el.hasAttribute('data-clock-synced')) {
        continue;
      }
      if (synced) {
        synced.add(el);
      } else {
        el.setAttribute('data-clock-synced', '');
      }
      var serverNow = Number(el.getAttribute('data-server-now'));
      if (serverNow > 0) {
        clockOffset = serverNow - Date.now();
      }
    }
  }

  function pad2(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function formatLeft(ms) {
    var s = Math.floor(ms / SECOND);
    return Math.floor(s / 3600) + ':' + pad2(Math.floor(s / 60) % 60) + ':' + pad2(s % 60);
  }

  function tick() {
    var now = Date.now() + clockOffset;
    var els = document.querySelectorAll('[data-countdown]');
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var endsAt = Number(el.getAttribute('data-ends-at'));
      if (!(endsAt > 0)) {
        continue;
      }
      var left = endsAt - now;
      var text = left > 0 ? formatLeft(left) : 'closed';
      if (el.textContent !== text) {
        el.textContent = text;
      }
      el.classList.toggle('is-amber', left > 0 && left < HOUR);
      el.classList.toggle('is-closed', left <= 0);
      // The panel is only rendered with a countdown while the session is open, so
      // reaching zero here means it has just ended: ask the server for the new state.
      if (left <= 0 && el.getAttribute('data-countdown') === 'panel' && !el.hasAttribute('data-ended')) {
        el.setAttribute('data-ended', '');
        if (Date.now() - lastSessionEnded > 2 * SECOND) {
          lastSessionEnded = Date.now();
          document.body.dispatchEvent(new Event('session-ended', { bubbles: true }));
        }
      }
    }
  }

  function startClock() {
    syncClock();
    tick();
    // Align the ticks to the second boundary of the server's clock.
    var delay = SECOND - ((Date.now() + clockOffset) % SECOND);
    window.setTimeout(function () {
      tick();
      window.setInterval(tick, SECOND);
    }, delay);
  }

  // ------------------------------------------------------------------ scrolling

  var SCROLLERS = ['thread-messages', 'sandbox-messages'];
  var NEAR_BOTTOM = 120;

  function scrollToBottom(el) {
    el.scrollTop = el.scrollHeight;
  }

  function watchScroller(id) {
    var el = document.getElementById(id);
    if (!el || el.hasAttribute('data-scroll-watched')) {
      return;
    }
    el.setAttribute('data-scroll-watched', '');
    var stuck = true;
    scrollToBottom(el);
    el.addEventListener('scroll', function () {
      stuck = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM;
    }, { passive: true });
    if (typeof MutationObserver !== 'function') {
      return;
    }
    new MutationObserver(function (records) {
      var own = false;
      var appended = false;
      for (var i = 0; i < records.length; i++) {
        var added = records[i].addedNodes;
        for (var j = 0; j < added.length; j++) {
          var n = added[j];
          if (n.nodeType !== 1 || n !== el.lastElementChild) {
            continue;
          }
          appended = true;
          // The agent's own reply (inbox) or the client's (sandbox) always scrolls.
          var dir = n.getAttribute('data-direction');
          if ((id === 'thread-messages' && dir === 'out') || (id === 'sandbox-messages' && dir === 'in')) {
            own = true;
          }
        }
      }
      if (appended && (stuck || own)) {
        scrollToBottom(el);
        stuck = true;
      }
    }).observe(el, { childList: true });
  }

  function watchScrollers() {
    for (var i = 0; i < SCROLLERS.length; i++) {
      watchScroller(SCROLLERS[i]);
    }
  }

  // ------------------------------------------------------------------- composer

  function countChars(s) {
    // Unicode code points, like the server (S5: 1 to 1000 characters). Browsers
    // submit line breaks as CRLF; the server is expected to count them as one.
    return Array.from(s).length;
  }

  function updateCounter(textarea) {
    if (!textarea || !textarea.id) {
      return;
    }
    var counter = document.querySelector('[data-char-counter="' + textarea.id + '"]');
    if (!counter) {
      return;
    }
    var max = Number(counter.getAttribute('data-max')) || 0;
    var n = countChars(textarea.value);
    counter.textContent = n + '/' + max;
    counter.classList.toggle('is-over', max > 0 && n > max);
    counter.classList.toggle('is-near', max > 0 && n <= max && n > max * 0.9);
  }

  function enabledSend(form) {
    var btn = form && form.querySelector('[data-testid="composer-send"], [data-testid="sandbox-send"]');
    return btn && !btn.disabled ? btn : null;
  }

  function submitWith(form, button) {
    if (typeof form.requestSubmit === 'function') {
      form.requestSubmit(button);
    } else {
      button.click();
    }
  }

  document.addEventListener('input', function (e) {
    var t = e.target;
    if (t && t.hasAttribute && t.id && document.querySelector('[data-char-counter="' + t.id + '"]')) {
      updateCounter(t);
    }
  });

  // ------------------------------------------------------------------- keyboard

  function isTyping(el) {
    if (!el || el === document.body) {
      return false;
    }
    var tag = el.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable;
  }

  function moveConversation(step) {
    var rows = Array.prototype.slice.call(document.querySelectorAll('[data-testid="conversation-row"]'));
    if (rows.length === 0) {
      return;
    }
    var current = -1;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].classList.contains('is-selected')) {
        current = i;
        break;
      }
    }
    var next = current < 0 ? (step > 0 ? 0 : rows.length - 1) : current + step;
    if (next < 0 || next >= rows.length || next === current) {
      return;
    }
    var link = rows[next].querySelector('a[href]');
    if (link) {
      rows[current] && rows[current].classList.remove('is-selected');
      rows[next].classList.add('is-selected');
      link.focus();
      window.location.href = link.href;
    }
  }

  document.addEventListener('keydown', function (e) {
    var t = e.target;

    // Ctrl+Enter / Cmd+Enter sends through the enabled send button. A send that
    // would begin a new billed session needs its own button: never by keyboard.
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && t && t.tagName === 'TEXTAREA' && t.form) {
      e.preventDefault();
      var btn = enabledSend(t.form);
      if (btn) {
        submitWith(t.form, btn);
      }
      return;
    }

    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(t)) {
      return;
    }
    if (e.key === 'j') {
      e.preventDefault();
      moveConversation(1);
    } else if (e.key === 'k') {
      e.preventDefault();
      moveConversation(-1);
    } else if (e.key === 'r') {
      var ta = document.getElementById('composer-text');
      if (ta) {
        e.preventDefault();
        ta.focus();
        var end = ta.value.length;
        ta.setSelectionRange(end, end);
      }
    }
  });

  // -------------------------------------------------------------------- sandbox

  function sandboxError(message) {
    var el = document.querySelector('[data-sandbox-error]');
    if (!el) {
      return;
    }
    el.textContent = message || '';
    el.hidden = !message;
  }

  document.addEventListener('htmx:afterRequest', function (e) {
    var form = e.detail && e.detail.elt;
    if (!form || !form.hasAttribute || !form.hasAttribute('data-sandbox-send')) {
      return;
    }
    if (e.detail.successful) {
      var ta = form.querySelector('textarea[name="text"]');
      if (ta) {
        ta.value = '';
        ta.focus();
      }
      sandboxError('');
    } else {
      var xhr = e.detail.xhr;
      var why = xhr && xhr.status ? ' (HTTP ' + xhr.status + ')' : ' (no connection)';
      sandboxError('Not sent' + why + '. Try again.');
    }
  });

  // Enter sends on the phone, like Viber; Shift+Enter makes a new line.
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (e.key !== 'Enter' || e.shiftKey || e.ctrlKey || e.metaKey || e.isComposing) {
      return;
    }
    if (!t || t.tagName !== 'TEXTAREA' || !t.form || !t.form.hasAttribute('data-sandbox-send')) {
      return;
    }
    e.preventDefault();
    if (t.value.trim() === '') {
      return;
    }
    var btn = enabledSend(t.form);
    if (btn) {
      submitWith(t.form, btn);
    }
  });

  // ------------------------------------------- keep the list's place across frames

  // Frames replace the whole conversation list: keep its scroll position and the
  // focused row, so a keyboard user is not thrown back to the top.
  var listState = null;

  document.addEventListener('htmx:oobBeforeSwap', function (e) {
    var target = e.detail && e.detail.target;
    if (!target || target.id !== 'conversation-list') {
      return;
    }
    var rows = target.querySelector('.rows');
    var focused = document.activeElement && target.contains(document.activeElement)
      ? document.activeElement.closest('[data-conversation-id]')
      : null;
    listState = {
      scrollTop: rows ? rows.scrollTop : 0,
      focusID: focused ? focused.getAttribute('data-conversation-id') : null
    };
  });

  document.addEventListener('htmx:oobAfterSwap', function () {
    if (!listState) {
      return;
    }
    var state = listState;
    listState = null;
    var rows = document.querySelector('#conversation-list .rows');
    if (rows) {
      rows.scrollTop = state.scrollTop;
    }
    if (state.focusID) {
      var link = document.querySelector('#conversation-list [data-conversation-id="' + state.focusID + '"] a');
      if (link) {
        link.focus({ preventScroll: true });
      }
    }
  });

  // ------------------------------------------------------------ wiring with htmx

  function refresh() {
    syncClock();
    tick();
    watchScrollers();
    updateCounter(document.getElementById('composer-text'));
  }

  ['htmx:afterSwap', 'htmx:oobAfterSwap', 'htmx:afterSettle', 'htmx:wsAfterMessage'].forEach(function (name) {
    document.addEventListener(name, refresh);
  });

  function ready() {
    startClock();
    watchScrollers();
    updateCounter(document.getElementById('composer-text'));
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', ready);
  } else {
    ready();
  }
})();
