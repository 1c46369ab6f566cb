/* Sessiondesk: the little script the pages need. Plain ES2017, no modules.
 *
 * - the live cursor: every websocket (re)connect resumes after the last event seen
 * - countdowns driven by the server's clock (S10), ticking every second
 * - every time shown rewritten in the browser's time zone
 * - keyboard: j / k to move between conversations, r to reply, n to write an
 *   internal note, Ctrl+Enter to send, Escape to leave the composer, ? for the
 *   help, c for the contact
 * - canned replies: / in the empty composer, placeholders filled in the browser
 * - the tab title's count of unread conversations
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

  // liveSocket is the page's socket, for the little the page says back
  // (typing; see presence below).
  var liveSocket = null;

  if (window.htmx) {
    window.htmx.createWebSocket = function (url) {
      var s = new WebSocket(withCursor(url));
      s.binaryType = window.htmx.config.wsBinaryType;
      liveSocket = s;
      return s;
    };
  }

  // A page too far behind to catch up event by event gets this exact frame
  // (handlers.ReloadFrame) and reloads; nothing else is swapped in.
  var RELOAD_FRAME = '<div id="live-reload" data-live-reload="reload"></div>';

  function reloadWhenTooFarBehind(evt) {
    if (evt.detail && evt.detail.message === RELOAD_FRAME) {
      evt.preventDefault();
      window.location.reload();
    }
  }

  document.addEventListener('htmx:wsBeforeMessage', reloadWhenTooFarBehind);

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

  // ---------------------------------------------------------------------- times

  // Every time an agent reads is a <time datetime="UTC instant" data-format>
  // (or a title with data-title-at), written by the server in its own zone as
  // a fallback. Here they are all rewritten in the browser's zone, so the
  // panel, the thread, the tooltips and the refusals speak one clock.
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  var DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  var zoneFormat = null;

  // zoned splits an instant into the browser's zone's fields.
  function zoned(d) {
    if (!zoneFormat) {
      zoneFormat = new Intl.DateTimeFormat('en-US', {
        year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
        second: 'numeric', hourCycle: 'h23', timeZoneName: 'short'
      });
    }
    var f = {};
    zoneFormat.formatToParts(d).forEach(function (p) { f[p.type] = p.value; });
    var z = {
      y: Number(f.year), mo: Number(f.month), d: Number(f.day),
      h: Number(f.hour) % 24, mi: Number(f.minute), s: Number(f.second), zone: f.timeZoneName || ''
    };
    z.wd = DAYS[new Date(Date.UTC(z.y, z.mo - 1, z.d)).getUTCDay()];
    return z;
  }

  // formatTime writes an instant like the server's formats (views/times.templ).
  function formatTime(d, format) {
    var z = zoned(d);
    var hm = pad2(z.h) + ':' + pad2(z.mi);
    var day = z.d + ' ' + MONTHS[z.mo - 1];
    switch (format) {
      case 'hm':
        return hm;
      case 'date':
        return day + ' ' + z.y + ' ' + hm + ':' + pad2(z.s);
      case 'full':
        return z.wd + ' ' + day + ' ' + z.y + ' ' + hm + ':' + pad2(z.s) + ' ' + z.zone;
    }
    return day + ' ' + hm;
  }

  function localizeTimes() {
    var els = document.querySelectorAll('time[datetime][data-format], [data-title-at]');
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var iso = el.getAttribute(el.hasAttribute('data-title-at') ? 'data-title-at' : 'datetime');
      if (el.getAttribute('data-localized') === iso) {
        continue;
      }
      var d = new Date(iso);
      if (isNaN(d.getTime())) {
        continue;
      }
      if (el.hasAttribute('data-title-at')) {
        el.title = (el.getAttribute('data-title-prefix') || '') + formatTime(d, 'day');
      } else {
        el.textContent = formatTime(d, el.getAttribute('data-format'));
        if (el.hasAttribute('title')) {
          el.title = formatTime(d, 'full');
        }
      }
      el.setAttribute('data-localized', iso);
    }
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
    if (typeof ResizeObserver === 'function') {
      // The composer grows (previews, a long draft) and the thread shrinks:
      // keep the newest message in view if it was.
      new ResizeObserver(function () {
        if (stuck) {
          scrollToBottom(el);
        }
      }).observe(el);
    }
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
    var btn = form && form.querySelector('[data-testid="composer-send"], [data-testid="sandbox-send"], [data-testid="note-send"]');
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

  // ------------------------------------------------------------ internal notes
  // The composer's Reply | Note tabs are radio buttons that CSS follows, so
  // they work without JS; the keys r and n check them and focus the draft.

  function openComposerMode(mode) {
    var radio = document.getElementById('composer-mode-' + mode);
    var ta = document.getElementById(mode === 'note' ? 'note-text' : 'composer-text');
    if (!radio || !ta) {
      return false;
    }
    radio.checked = true;
    ta.focus();
    var end = ta.value.length;
    ta.setSelectionRange(end, end);
    return true;
  }

  // A note added (or refused) comes back as a fresh Note tab: keep typing there.
  document.addEventListener('htmx:afterSwap', function (e) {
    var d = e.detail || {};
    var from = d.requestConfig && d.requestConfig.elt;
    if ((from && from.id === 'note-composer') || (d.elt && d.elt.id === 'note-composer')) {
      openComposerMode('note');
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
    } else if (e.key === 'n') {
      if (openComposerMode('note')) {
        e.preventDefault();
      }
    } else if (e.key === 'r') {
      var ta = document.getElementById('composer-text');
      if (ta) {
        e.preventDefault();
        openComposerMode('reply');
        ta.focus();
        var end = ta.value.length;
        ta.setSelectionRange(end, end);
      }
    }
  });

  // ---------------------------------------------- status, snooze, assignment

  // e resolves, p sets pending, a assigns to me: each clicks its header
  // button, so the key and the click are one path. s opens the snooze picker.
  var STATUS_KEYS = {e: 'status-resolved', p: 'status-pending', a: 'assign-me', u: 'mark-unread'};

  // "Mark unread" goes back to the list in the view the page shows.
  document.addEventListener('submit', function (e) {
    var input = e.target && e.target.querySelector && e.target.querySelector('[data-list-view]');
    var scope = listScope();
    if (input && scope) {
      input.value = scope.view;
    }
  }, true);

  // g then a view's letter opens the view (g m Mine, g u Unassigned, ...).
  var gPressedAt = 0;
  document.addEventListener('keydown', function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) {
      return;
    }
    if (e.key === 'g') {
      gPressedAt = Date.now();
      return;
    }
    if (Date.now() - gPressedAt > 1500) {
      return;
    }
    gPressedAt = 0;
    var link = document.querySelector('.view-tab[aria-keyshortcuts="g ' + e.key + '"]');
    if (link) {
      e.preventDefault();
      window.location.href = link.href;
    }
  }, true);

  function snoozePicker() {
    return document.getElementById('snooze-picker');
  }

  document.addEventListener('keydown', function (e) {
    var picker = snoozePicker();
    if (e.key === 'Escape' && picker && picker.open) {
      picker.open = false;
      picker.querySelector('summary').focus();
      return;
    }
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) {
      return;
    }
    var id = STATUS_KEYS[e.key];
    if (id) {
      var btn = document.querySelector('[data-testid="' + id + '"]');
      if (btn && btn.form) {
        e.preventDefault();
        // A click, not requestSubmit: htmx takes the submitter's name=value
        // from the button last clicked.
        btn.click();
      }
    } else if (e.key === 's' && picker) {
      e.preventDefault();
      picker.open = true;
      var first = picker.querySelector('[data-testid="snooze-1h"]');
      if (first) {
        first.focus();
      }
    }
  });

  // The snooze time in the browser's zone: "tomorrow 9:00" and a typed time
  // are the agent's own, so the exact instant goes to the server. 1 h and 4 h
  // are left to the server's clock (S10).
  document.addEventListener('click', function (e) {
    var b = e.target && e.target.closest && e.target.closest('[data-snooze-form] button[name="snooze"]');
    if (!b) {
      return;
    }
    var until = b.form.querySelector('[data-snooze-until]');
    until.value = '';
    var d = null;
    if (b.value === 'tomorrow') {
      d = new Date();
      d.setDate(d.getDate() + 1);
      d.setHours(9, 0, 0, 0);
    } else if (b.value === 'at') {
      var typed = b.form.querySelector('[data-snooze-local]').value;
      d = typed ? new Date(typed) : null;
    }
    if (d && !isNaN(d.getTime())) {
      until.value = d.toISOString();
    }
  }, true);

  // A refused change says why under the buttons; a done one closes the picker.
  document.addEventListener('htmx:afterRequest', function (e) {
    var form = e.detail && e.detail.elt;
    var actions = form && form.closest && form.closest('[data-testid="thread-actions"]');
    if (!actions) {
      return;
    }
    var box = actions.querySelector('[data-thread-actions-error]');
    if (e.detail.successful) {
      box.hidden = true;
      var picker = snoozePicker();
      if (picker && form.hasAttribute('data-snooze-form')) {
        picker.open = false;
      }
      return;
    }
    var xhr = e.detail.xhr, msg = 'Not saved (no connection). Try again.';
    if (xhr && xhr.status) {
      var doc = new DOMParser().parseFromString(xhr.responseText || '', 'text/html');
      var m = doc.querySelector('[data-testid="error-message"]');
      msg = m ? m.textContent : 'Not saved (HTTP ' + xhr.status + ').';
    }
    box.textContent = msg;
    box.hidden = false;
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
      form.querySelectorAll('input[type="file"]').forEach(function (f) { f.value = ''; });
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

  // ------------------------------------------------------- the conversation list
  // Frames never replace the list. They carry the rows an event batch changed
  // in #list-delta, the same bytes for every page, and this puts each row in
  // its place. A row says what places it in the views (status, assignee,
  // unanswered run, session end, the client's newest message): whether it
  // belongs in this page's view, and where, follows the server's rules
  // (store/views.go): clients waiting on us first, the one whose session ends
  // first on top, then the rest by activity, newest first; Closed unanswered
  // by session end, latest first. A row that no longer belongs leaves; one
  // that belongs below the last loaded row waits for "Load more". Shared rows
  // carry no per-page state: the open conversation and unread (from the
  // agent's read marks) are marked here.

  function listScope() {
    var el = document.getElementById('conversation-list');
    if (!el) {
      return null;
    }
    return {
      view: el.getAttribute('data-view') || 'all',
      status: el.getAttribute('data-status-filter') || 'open',
      agent: el.getAttribute('data-agent') || '0',
      expiring: Number(el.getAttribute('data-expiring-ms')) || 3600000,
      maxUnanswered: Number(el.getAttribute('data-max-unanswered')) || 5
    };
  }

  function num(el, name) {
    return Number(el.getAttribute(name)) || 0;
  }

  function listNow() {
    return Date.now() + clockOffset;
  }

  function waiting(el, now) {
    return num(el, 'data-last-in') > 0 && num(el, 'data-unanswered') === 0 && num(el, 'data-ends') > now;
  }

  // inView is store.Conversation.InView.
  function inView(scope, el, now) {
    if (scope.status !== 'any' && el.getAttribute('data-status') !== scope.status) {
      return false;
    }
    var ends = num(el, 'data-ends');
    var open = ends > now;
    var unanswered = num(el, 'data-unanswered');
    switch (scope.view) {
      case 'mine':
        return el.getAttribute('data-assignee-id') === scope.agent;
      case 'unassigned':
        return (el.getAttribute('data-assignee-id') || '0') === '0';
      case 'waiting':
        return waiting(el, now);
      case 'expiring':
        return open && ends <= now + scope.expiring && unanswered < scope.maxUnanswered;
      case 'locked':
        return open && unanswered >= scope.maxUnanswered;
      case 'lost':
        return num(el, 'data-last-in') > 0 && unanswered === 0 && ends > 0 && !open;
    }
    return true;
  }

  // rowKey is store.ListRow.KeyIn: [band, key, id], compared by before().
  function rowKey(scope, el, now) {
    var id = num(el, 'data-conversation-id');
    if (scope.view === 'lost') {
      return [1, -num(el, 'data-ends'), -id];
    }
    if (waiting(el, now)) {
      return [0, num(el, 'data-ends'), id];
    }
    return [1, -num(el, 'data-activity'), -id];
  }

  function before(a, b) {
    for (var i = 0; i < 3; i++) {
      if (a[i] !== b[i]) {
        return a[i] < b[i];
      }
    }
    return false;
  }

  function rowOf(list, id) {
    for (var i = 0; i < list.children.length; i++) {
      if (list.children[i].getAttribute('data-conversation-id') === id) {
        return list.children[i];
      }
    }
    return null;
  }

  // The agent's read marks (conversation id -> the client message read up
  // to), from the frames' #read-marks; a row keeps the mark it had.
  var readMarks = {};

  function takeReadMarks() {
    var el = document.getElementById('read-marks');
    var v = el && el.getAttribute('data-marks');
    if (!v) {
      return;
    }
    v.split(',').forEach(function (pair) {
      var kv = pair.split(':');
      if (kv.length === 2) {
        readMarks[kv[0]] = Number(kv[1]) || 0;
      }
    });
    el.removeAttribute('data-marks');
  }

  function markUnread(row, old) {
    var id = row.getAttribute('data-conversation-id');
    if (!row.hasAttribute('data-read')) {
      var mark = readMarks[id];
      if (mark === undefined && old) {
        mark = num(old, 'data-read');
      }
      row.setAttribute('data-read', String(mark || 0));
    }
    row.classList.toggle('is-unread', num(row, 'data-last-in') > num(row, 'data-read'));
  }

  function placeRow(scope, list, row, now) {
    var old = rowOf(list, row.getAttribute('data-conversation-id'));
    markUnread(row, old);
    if (!inView(scope, row, now)) {
      if (old) {
        list.removeChild(old);
      }
      return;
    }
    var key = rowKey(scope, row, now);
    if (old && !before(key, rowKey(scope, old, now)) && !before(rowKey(scope, old, now), key)) {
      list.replaceChild(row, old);
      return;
    }
    if (old) {
      list.removeChild(old);
    }
    for (var i = 0; i < list.children.length; i++) {
      if (before(key, rowKey(scope, list.children[i], now))) {
        // A page opened further down the list (?before=) does not grow upwards.
        if (i > 0 || list.hasAttribute('data-list-top')) {
          list.insertBefore(row, list.children[i]);
        }
        return;
      }
    }
    if (!document.querySelector('#list-more[data-cursor]')) {
      list.appendChild(row);
    }
  }

  // Time alone moves rows: a waiting client whose session ends is lost, a
  // session nearing its end is Expiring. Each half minute the loaded rows are
  // placed again (the counts come from the server at the same pace).
  function replaceByTime() {
    var scope = listScope();
    var list = document.getElementById('conversation-rows');
    if (!scope || !list) {
      return;
    }
    var now = listNow();
    Array.prototype.slice.call(list.children).forEach(function (row) {
      placeRow(scope, list, row.cloneNode(true), now);
    });
    listChanged();
  }

  setInterval(replaceByTime, 30 * SECOND);

  // The sidebar's counts and the tab title's unread total, per agent, from
  // the frames' #view-counts (counts of open conversations: a page filtered on
  // another status keeps its own, drawn with it).
  function takeViewCounts() {
    var el = document.getElementById('view-counts');
    var scope = listScope();
    if (!el || !scope || !el.hasAttribute('data-unread-total')) {
      return;
    }
    var list = document.getElementById('conversation-list');
    list.setAttribute('data-unread-total', el.getAttribute('data-unread-total'));
    if (scope.status === (el.getAttribute('data-status') || 'open')) {
      var items = el.content ? el.content.querySelectorAll('i[data-view]') : el.querySelectorAll('i[data-view]');
      Array.prototype.forEach.call(items, function (i) {
        var out = document.querySelector('[data-view-count="' + i.getAttribute('data-view') + '"]');
        if (out && out.textContent !== i.getAttribute('data-n')) {
          out.textContent = i.getAttribute('data-n');
        }
      });
    }
    el.removeAttribute('data-unread-total');
  }

  function listChanged() {
    var list = document.getElementById('conversation-rows');
    if (!list) {
      return;
    }
    // "Load more" answers from its own snapshot: a row a frame moved up in
    // the meantime is already shown, fresher, above.
    var seen = {};
    Array.prototype.slice.call(list.children).forEach(function (row) {
      var id = row.getAttribute('data-conversation-id');
      if (seen[id]) {
        list.removeChild(row);
      }
      seen[id] = true;
    });
    var thread = document.querySelector('[data-testid="thread"][data-conversation-id]');
    var open = thread ? thread.getAttribute('data-conversation-id') : null;
    for (var i = 0; i < list.children.length; i++) {
      var row = list.children[i];
      var on = row.getAttribute('data-conversation-id') === open;
      row.classList.toggle('is-selected', on);
      if (on && row.classList.contains('is-unread')) {
        // What the agent has open is read (the server marks it for them).
        row.setAttribute('data-read', row.getAttribute('data-last-in') || '0');
        row.setAttribute('data-was-unread', 'true');
        row.classList.remove('is-unread');
      }
      var link = row.querySelector('a');
      if (link && on) {
        link.setAttribute('aria-current', 'page');
      } else if (link) {
        link.removeAttribute('aria-current');
      }
    }
    var count = document.querySelector('#conversation-list [data-testid="conversation-count"]');
    if (count) {
      count.textContent = String(list.children.length);
    }
    var empty = document.querySelector('#conversation-list .list-empty');
    if (empty && list.children.length > 0) {
      empty.remove();
    }
  }

  function applyListDelta() {
    takeReadMarks();
    takeViewCounts();
    var delta = document.getElementById('list-delta');
    var list = document.getElementById('conversation-rows');
    var scope = listScope();
    if (!delta || !list || !scope || delta.children.length === 0) {
      return;
    }
    var active = document.activeElement;
    var focusID = active && list.contains(active) && active.closest('[data-conversation-id]')
      ? active.closest('[data-conversation-id]').getAttribute('data-conversation-id')
      : null;
    var rows = Array.prototype.slice.call(delta.children);
    delta.textContent = '';
    var now = listNow();
    rows.forEach(function (row) { placeRow(scope, list, row, now); });
    listChanged();
    if (focusID && !list.contains(document.activeElement)) {
      var row = rowOf(list, focusID);
      var link = row && row.querySelector('a');
      if (link) {
        link.focus({ preventScroll: true });
      }
    }
  }

  document.addEventListener('htmx:wsAfterMessage', applyListDelta);

  // The page's "I have shown this conversation" went through: one unread
  // conversation fewer in the title, when it was unread and in the agent's views.
  document.addEventListener('htmx:afterRequest', function (e) {
    var elt = e.detail && e.detail.elt;
    if (!elt || elt.getAttribute('data-testid') !== 'mark-read' || !e.detail.successful) {
      return;
    }
    var list = document.getElementById('conversation-list');
    var thread = document.querySelector('[data-testid="thread"][data-conversation-id]');
    var row = list && thread && rowOf(document.getElementById('conversation-rows'), thread.getAttribute('data-conversation-id'));
    if (row && (row.classList.contains('is-unread') || row.getAttribute('data-was-unread') === 'true')) {
      row.setAttribute('data-read', row.getAttribute('data-last-in') || '0');
      row.classList.remove('is-unread');
      var assignee = row.getAttribute('data-assignee-id') || '0';
      var scope = listScope();
      if (row.getAttribute('data-status') === 'open' && (assignee === '0' || assignee === scope.agent)) {
        list.setAttribute('data-unread-total', String(Math.max(0, (Number(list.getAttribute('data-unread-total')) || 0) - 1)));
        updateTitle();
      }
      row.removeAttribute('data-was-unread');
    }
  });
  document.addEventListener('htmx:afterSwap', function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === 'conversation-rows') {
      listChanged();
    }
  });

  // ---------------------------------------------------------------- attachments
  // The composer's files live in its <input type=file>; picking, dropping and
  // pasting all add to it (through a DataTransfer), and the previews can remove
  // one. Before anything is sent, the usage line counts the messages the send
  // will use (S5: the text, then one per attachment) against what the session
  // allows; the server checks again.

  // The limits are the server's, rendered on the form (data-*): the checks
  // here refuse early what the server would refuse, never more.
  function composerLimits() {
    var form = document.getElementById('composer');
    var num = function (name) { return form ? Number(form.getAttribute('data-' + name)) || 0 : 0; };
    var list = function (name) {
      var v = form ? form.getAttribute('data-' + name) : '';
      return v ? v.split(',') : [];
    };
    return {
      textMax: num('text-max'), imageMax: num('image-max'), fileMax: num('file-max'),
      imageWarn: num('image-warn'), fileWarn: num('file-warn'), nameMax: num('name-max'),
      imageTypes: list('image-types'), fileTypes: list('file-types')
    };
  }

  function filesInput() {
    return document.getElementById('composer-files');
  }

  function extOf(name) {
    var i = name.lastIndexOf('.');
    return i > 0 ? name.slice(i + 1).toLowerCase() : '';
  }

  function isImageFile(f, lim) {
    return lim.imageTypes.indexOf(extOf(f.name)) >= 0;
  }

  function sizeText(n) {
    if (n >= 1000000) {
      return (n / 1000000).toFixed(1) + ' MB';
    }
    if (n >= 1000) {
      return Math.round(n / 1000) + ' KB';
    }
    return n + ' bytes';
  }

  // sizeUp rounds up, so that a size just over a limit never reads as the
  // limit itself; limitText writes a limit as it is set (5 MB, 600 KB).
  function sizeUp(n) {
    if (n >= 1000000) {
      return (Math.ceil(n / 100000) / 10).toFixed(1) + ' MB';
    }
    if (n >= 1000) {
      return Math.ceil(n / 1000) + ' KB';
    }
    return n + ' bytes';
  }

  function limitText(n) {
    if (n >= 1000000) {
      return n / 1000000 + ' MB';
    }
    if (n >= 1000) {
      return n / 1000 + ' KB';
    }
    return n + ' bytes';
  }

  // shortenName keeps the extension and trims the stem, like the server's
  // suggestion (media.ShortenName).
  function shortenName(name, max) {
    var chars = Array.from(name);
    if (chars.length <= max) {
      return name;
    }
    var ext = extOf(name);
    var suffix = ext ? name.slice(name.lastIndexOf('.')) : '';
    var keep = max - Array.from(suffix).length;
    if (!suffix || keep < 1) {
      return chars.slice(0, max).join('');
    }
    var stem = chars.slice(0, keep).join('').replace(/[\s._-]+$/, '');
    return (stem || chars.slice(0, keep).join('')) + suffix;
  }

  // checkFile says why the server would refuse f ({refusal}), offering a
  // shorter name when only the name is wrong ({rename}), or what it would
  // warn about ({warning}).
  function checkFile(f, lim) {
    var q = '\u201c' + f.name + '\u201d';
    var ext = extOf(f.name);
    if (isImageFile(f, lim)) {
      if (f.size > lim.imageMax) {
        return { refusal: 'The image is ' + sizeUp(f.size) + '; Viber allows images of at most ' + limitText(lim.imageMax) + '.' };
      }
      return f.size > lim.imageWarn ? { warning: 'Viber recommends images up to ' + limitText(lim.imageWarn) + '.' } : {};
    }
    if (ext === 'svg' || f.type === 'image/svg+xml') {
      return { refusal: q + ' is an SVG drawing: Viber sends images as JPEG or PNG only. Export it as PNG first.' };
    }
    if (lim.fileTypes.indexOf(ext) < 0) {
      return { refusal: 'Viber cannot send ' + (ext ? '.' + ext : 'files without an extension') + ': files may be ' +
        lim.fileTypes.join(', ') + ', images ' + lim.imageTypes.join(', ') + '.' };
    }
    if (f.size === 0) {
      return { refusal: 'The file is empty.' };
    }
    if (f.size > lim.fileMax) {
      return { refusal: 'The file is ' + sizeUp(f.size) + '; Viber allows files of at most ' + limitText(lim.fileMax) + '.' };
    }
    var n = Array.from(f.name).length;
    if (lim.nameMax > 0 && n > lim.nameMax) {
      return {
        refusal: 'The name has ' + n + ' characters; Viber allows at most ' + lim.nameMax + ', extension included.',
        rename: shortenName(f.name, lim.nameMax)
      };
    }
    return f.size > lim.fileWarn ? { warning: 'Viber recommends files up to ' + limitText(lim.fileWarn) + '.' } : {};
  }

  // The files of a send are kept on the input itself (kept), so that picking
  // again adds to them instead of replacing them, and a fresh composer (after
  // a send) starts empty.
  function currentFiles() {
    var input = filesInput();
    return input && input.kept ? input.kept.slice() : [];
  }

  function setFiles(list) {
    var input = filesInput();
    if (!input) {
      return;
    }
    var dt = new DataTransfer();
    list.forEach(function (f) { dt.items.add(f); });
    input.files = dt.files;
    input.kept = list.slice();
    renderAttachments();
  }

  function sameFile(a, b) {
    return a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
  }

  function addFiles(files) {
    var list = currentFiles();
    for (var i = 0; i < files.length; i++) {
      var f = files[i];
      if (f.name === 'image.png' && f.type === 'image/png') {
        // A pasted screenshot: give it a name that says what it is.
        f = new File([f], 'screenshot-' + new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-') + '.png', { type: f.type });
      }
      if (!list.some(function (g) { return sameFile(f, g); })) {
        list.push(f);
      }
    }
    setFiles(list);
  }

  function previewLine(cls, text, testid) {
    var el = document.createElement('span');
    el.className = cls;
    el.textContent = text;
    if (testid) {
      el.setAttribute('data-testid', testid);
    }
    return el;
  }

  function renderAttachments() {
    var box = document.getElementById('composer-previews');
    if (!box) {
      return;
    }
    var lim = composerLimits();
    box.querySelectorAll('img').forEach(function (img) { URL.revokeObjectURL(img.src); });
    box.textContent = '';
    var files = currentFiles();
    box.hidden = files.length === 0;
    files.forEach(function (f, i) {
      var check = checkFile(f, lim);
      var li = document.createElement('li');
      li.className = 'preview' + (check.refusal ? ' is-refused' : '');
      li.setAttribute('data-testid', 'composer-preview');
      if (isImageFile(f, lim) && !check.refusal) {
        var img = document.createElement('img');
        img.src = URL.createObjectURL(f);
        img.alt = '';
        li.appendChild(img);
      } else {
        li.appendChild(previewLine('file-type', (extOf(f.name) || 'file').toUpperCase().slice(0, 5)));
      }
      var info = document.createElement('span');
      info.className = 'preview-info';
      info.appendChild(previewLine('preview-name', f.name, 'composer-preview-name'));
      info.appendChild(previewLine('preview-meta', sizeText(f.size)));
      if (check.refusal) {
        var refusal = previewLine('preview-refusal', check.refusal, 'composer-preview-refusal');
        refusal.setAttribute('role', 'alert');
        info.appendChild(refusal);
      } else if (check.warning) {
        info.appendChild(previewLine('preview-warn', check.warning));
      }
      if (check.rename) {
        var rn = document.createElement('button');
        rn.type = 'button';
        rn.className = 'link-button preview-rename';
        rn.setAttribute('data-testid', 'composer-preview-rename');
        rn.textContent = 'Rename to \u201c' + check.rename + '\u201d';
        rn.addEventListener('click', function () {
          var list = currentFiles();
          list[i] = new File([f], check.rename, { type: f.type, lastModified: f.lastModified });
          setFiles(list);
        });
        info.appendChild(rn);
      }
      li.appendChild(info);
      var rm = document.createElement('button');
      rm.type = 'button';
      rm.className = 'preview-remove';
      rm.setAttribute('aria-label', 'Remove ' + f.name);
      rm.setAttribute('data-testid', 'composer-preview-remove');
      rm.textContent = '\u00d7';
      rm.addEventListener('click', function () {
        var list = currentFiles();
        list.splice(i, 1);
        setFiles(list);
      });
      li.appendChild(rm);
      box.appendChild(li);
    });
    updateUsage();
  }

  // usageFor says what sending text (with the picked files) would use: the
  // usage line, or why it would be refused (why, "" when it would go). The
  // composer and the canned-reply preview both show it.
  function usageFor(text) {
    var actions = document.getElementById('composer-actions');
    var lim = composerLimits();
    var files = currentFiles();
    var refused = files.filter(function (f) { return checkFile(f, lim).refusal; }).length;
    var hasText = text.trim() !== '';
    var n = files.length + (hasText || files.length === 0 ? 1 : 0);
    var chars = countChars(text);
    var left = actions ? Number(actions.getAttribute('data-unanswered-left')) : 0;
    var remaining = actions ? Number(actions.getAttribute('data-remaining')) : 0;
    var why = '';
    if (lim.textMax > 0 && chars > lim.textMax) {
      why = 'The text has ' + chars + ' characters; Viber allows at most ' + lim.textMax + '. Shorten it by ' + (chars - lim.textMax) + '.';
    } else if (refused > 0) {
      why = refused === 1 ? 'An attachment cannot be sent: rename or remove it.' : refused + ' attachments cannot be sent: rename or remove them.';
    } else if (n > left) {
      why = 'This send needs ' + n + ' messages but only ' + left + ' more may go before the client must reply. Remove ' + (n - left) + '.';
    }
    return {
      n: n, why: why,
      line: 'Uses ' + n + (n === 1 ? ' message' : ' messages') + ' \u00b7 ' + remaining + ' left in this session \u00b7 ' +
        left + ' more before the client must reply'
    };
  }

  // updateUsage says how many messages the send will use, and disables Send
  // (and the confirmation) when the server would refuse it: text over the limit, a refused attachment, or more messages than the
  // session allows (spec case 16).
  function updateUsage() {
    var actions = document.getElementById('composer-actions');
    var ta = document.getElementById('composer-text');
    if (!actions || !ta) {
      return;
    }
    var u = usageFor(ta.value);
    var why = u.why;
    var usage = actions.querySelector('[data-testid="composer-usage"]');
    var blocked = why !== '';
    actions.setAttribute('data-blocked', blocked ? why : '');
    var canSend = actions.getAttribute('data-can-send') === 'true';
    if (usage && canSend) {
      usage.textContent = blocked ? why : u.line;
      usage.classList.toggle('is-over', blocked);
    }
    var send = actions.querySelector('[data-testid="composer-send"]');
    if (send && canSend) {
      send.disabled = blocked;
    }
    var confirm = actions.querySelector('[data-testid="composer-confirm"]');
    if (confirm) {
      confirm.disabled = blocked;
    }
  }

  document.addEventListener('change', function (e) {
    if (e.target && e.target.id === 'composer-files') {
      // The picker replaced the input's files: add them to the kept ones.
      addFiles(Array.prototype.slice.call(e.target.files || []));
    }
  });

  document.addEventListener('input', function (e) {
    if (e.target && e.target.id === 'composer-text') {
      updateUsage();
    }
  });

  document.addEventListener('paste', function (e) {
    var composer = document.getElementById('composer');
    if (!composer || !e.clipboardData || !composer.contains(document.activeElement)) {
      return;
    }
    var files = Array.prototype.slice.call(e.clipboardData.files || []);
    if (files.length > 0) {
      e.preventDefault();
      addFiles(files);
    }
  });

  document.addEventListener('dragover', function (e) {
    var composer = document.getElementById('composer');
    if (composer && composer.contains(e.target)) {
      e.preventDefault();
      composer.classList.add('is-dragging');
    }
  });

  document.addEventListener('dragleave', function (e) {
    var composer = document.getElementById('composer');
    if (composer && e.target === composer) {
      composer.classList.remove('is-dragging');
    }
  });

  document.addEventListener('drop', function (e) {
    var composer = document.getElementById('composer');
    if (composer && composer.contains(e.target) && e.dataTransfer && e.dataTransfer.files.length > 0) {
      e.preventDefault();
      composer.classList.remove('is-dragging');
      addFiles(e.dataTransfer.files);
    }
  });

  // A canned reply goes into the draft where the cursor is, its placeholders
  // filled (see the canned replies below); the agent still sends it.
  document.addEventListener('click', function (e) {
    var chip = e.target.closest && e.target.closest('[data-canned]');
    if (!chip || !document.getElementById('composer-text')) {
      return;
    }
    chooseCanned(chip.getAttribute('data-canned'));
  });

  // ------------------------------------------------------------------- lightbox

  function closeLightbox() {
    var box = document.getElementById('lightbox');
    if (box) {
      box.remove();
    }
  }

  document.addEventListener('click', function (e) {
    var link = e.target.closest && e.target.closest('a[data-lightbox]');
    if (!link) {
      if (e.target.closest && e.target.closest('#lightbox')) {
        closeLightbox();
      }
      return;
    }
    e.preventDefault();
    closeLightbox();
    var box = document.createElement('div');
    box.id = 'lightbox';
    box.className = 'lightbox';
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-label', 'Image');
    box.setAttribute('data-testid', 'lightbox');
    var img = document.createElement('img');
    img.src = link.href;
    img.alt = link.querySelector('img') ? link.querySelector('img').alt : '';
    box.appendChild(img);
    document.body.appendChild(box);
  });

  document.addEventListener('keydown', function (e) {
    if (e.key !== 'Escape') {
      return;
    }
    if (document.getElementById('lightbox')) {
      closeLightbox();
      return;
    }
    // Escape leaves the composer (after Ctrl+Enter the new one has the focus),
    // so that j and k move between conversations again.
    var t = e.target;
    if (t && t.closest && t.closest('#composer, #note-composer') && isTyping(t)) {
      t.blur();
    }
  });

  // ------------------------------------------------------------- canned replies
  // "/" in an empty composer opens the canned replies (the chips the server
  // rendered): type to filter, arrows to pick, Enter to choose, Escape to
  // close. A reply's placeholders are filled here, from what the page
  // already has: {{contact.name}} (the composer's data-contact-name, which
  // frames keep fresh), {{agent.name}} (the form's data-agent-name), and
  // {{ask:Question}}, which asks the agent in the picker before inserting.
  // Anything else between braces stays as typed (admins cannot save it).
  // Every value goes in as text: the draft is a textarea's value and the
  // preview a textContent, never HTML.

  var PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

  function askLabels(tpl) {
    var out = [];
    tpl.replace(PLACEHOLDER, function (all, inner) {
      var m = /^ask:(.*)$/.exec(inner);
      var label = m ? m[1].trim() : '';
      if (label && out.indexOf(label) < 0) {
        out.push(label);
      }
      return all;
    });
    return out;
  }

  // fillPlaceholders replaces the known placeholders; an unanswered question
  // shows as [Question] in the preview (asks null) and is asked before insert.
  function fillPlaceholders(tpl, asks) {
    var actions = document.getElementById('composer-actions');
    var form = document.getElementById('composer');
    var contact = actions ? actions.getAttribute('data-contact-name') || '' : '';
    var agent = form ? form.getAttribute('data-agent-name') || '' : '';
    return tpl.replace(PLACEHOLDER, function (all, inner) {
      if (inner === 'contact.name') {
        return contact;
      }
      if (inner === 'agent.name') {
        return agent;
      }
      var m = /^ask:(.*)$/.exec(inner);
      var label = m ? m[1].trim() : '';
      if (!label) {
        return all;
      }
      return asks && Object.prototype.hasOwnProperty.call(asks, label) ? asks[label] : '[' + label + ']';
    });
  }

  function insertDraft(text) {
    var ta = document.getElementById('composer-text');
    if (!ta) {
      return;
    }
    var start = ta.selectionStart || 0;
    var end = ta.selectionEnd || 0;
    ta.value = ta.value.slice(0, start) + text + ta.value.slice(end);
    ta.selectionStart = ta.selectionEnd = start + text.length;
    ta.focus();
    updateCounter(ta);
    updateUsage();
  }

  function cannedReplies() {
    return Array.prototype.slice.call(document.querySelectorAll('#composer [data-canned]')).map(function (chip) {
      return { title: chip.textContent.trim(), text: chip.getAttribute('data-canned') };
    });
  }

  function closeCanned(refocus) {
    var box = document.getElementById('canned-picker');
    if (box) {
      box.remove();
    }
    var ta = document.getElementById('composer-text');
    if (refocus && ta) {
      ta.focus();
    }
  }

  function el(tag, cls, text, testid) {
    var e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text) {
      e.textContent = text;
    }
    if (testid) {
      e.setAttribute('data-testid', testid);
    }
    return e;
  }

  // pickerBox is the picker's frame: a preview of the reply as it will be
  // inserted and the usage line of the composer for it.
  function pickerBox(label) {
    closeCanned(false);
    var composer = document.getElementById('composer');
    var box = el('div', 'canned-picker', '', 'canned-picker');
    box.id = 'canned-picker';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', label);
    var body = el('div', 'canned-picker-body');
    var preview = el('p', 'canned-preview', '', 'canned-preview');
    var usage = el('p', 'canned-usage', '', 'canned-usage');
    usage.setAttribute('aria-live', 'polite');
    box.appendChild(body);
    box.appendChild(preview);
    box.appendChild(usage);
    // Above the composer, outside its form: Enter in the picker never sends.
    composer.parentNode.insertBefore(box, composer);
    return {
      box: box, body: body,
      show: function (text) {
        preview.textContent = text;
        var u = usageFor(text);
        usage.textContent = u.why || u.line;
        usage.classList.toggle('is-over', u.why !== '');
      }
    };
  }

  // onEnter runs fn when Enter is released in el: acting on the key's release
  // moves the focus only once the key has done everything it does, so its
  // character never lands in the field that gets the focus.
  function onEnter(el, fn) {
    var down = false;
    el.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') {
        e.preventDefault();
        down = !e.isComposing;
      }
    });
    el.addEventListener('keyup', function (e) {
      if (e.key === 'Enter' && down) {
        down = false;
        e.preventDefault();
        fn(e);
      }
    });
  }

  // chooseCanned inserts a reply, asking its questions first.
  function chooseCanned(tpl) {
    var labels = askLabels(tpl);
    if (labels.length === 0) {
      closeCanned(false);
      insertDraft(fillPlaceholders(tpl, {}));
      return;
    }
    var p = pickerBox('Fill in the canned reply');
    var form = el('div', 'canned-ask', '', 'canned-ask');
    var inputs = labels.map(function (label, i) {
      var lab = el('label', 'canned-ask-field');
      lab.appendChild(el('span', '', label));
      var input = document.createElement('input');
      input.type = 'text';
      input.autocomplete = 'off';
      input.setAttribute('data-ask', label);
      input.setAttribute('data-testid', 'canned-ask-input');
      input.id = 'canned-ask-' + i;
      lab.appendChild(input);
      form.appendChild(lab);
      return input;
    });
    var values = function () {
      var v = {};
      inputs.forEach(function (input) { v[input.getAttribute('data-ask')] = input.value; });
      return v;
    };
    var insert = el('button', 'btn btn-secondary', 'Insert', 'canned-ask-insert');
    insert.type = 'button';
    var cancel = el('button', 'link-button', 'Cancel');
    cancel.type = 'button';
    form.appendChild(insert);
    form.appendChild(cancel);
    p.body.appendChild(form);
    var done = function () {
      var text = fillPlaceholders(tpl, values());
      closeCanned(false);
      insertDraft(text);
    };
    insert.addEventListener('click', done);
    cancel.addEventListener('click', function () { closeCanned(true); });
    form.addEventListener('input', function () { p.show(fillPlaceholders(tpl, values())); });
    onEnter(form, function (e) {
      var i = inputs.indexOf(e.target);
      if (i >= 0 && i < inputs.length - 1) {
        inputs[i + 1].focus();
      } else {
        done();
      }
    });
    p.show(fillPlaceholders(tpl, values()));
    inputs[0].focus();
  }

  function openCanned() {
    var replies = cannedReplies();
    if (replies.length === 0) {
      return false;
    }
    var p = pickerBox('Canned replies');
    var filter = document.createElement('input');
    filter.type = 'text';
    filter.className = 'canned-filter';
    filter.placeholder = 'Filter canned replies';
    filter.autocomplete = 'off';
    filter.setAttribute('role', 'combobox');
    filter.setAttribute('aria-expanded', 'true');
    filter.setAttribute('aria-controls', 'canned-options');
    filter.setAttribute('aria-label', 'Filter canned replies');
    filter.setAttribute('data-testid', 'canned-filter');
    var list = el('ul', 'canned-options', '', 'canned-options');
    list.id = 'canned-options';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Canned replies');
    p.body.appendChild(filter);
    p.body.appendChild(list);
    var shown = [];
    var current = 0;
    var select = function (i) {
      current = Math.max(0, Math.min(i, shown.length - 1));
      Array.prototype.forEach.call(list.children, function (li, j) {
        li.setAttribute('aria-selected', j === current ? 'true' : 'false');
        li.classList.toggle('is-active', j === current);
      });
      if (shown.length > 0) {
        filter.setAttribute('aria-activedescendant', 'canned-option-' + current);
        p.show(fillPlaceholders(shown[current].text, null));
      } else {
        filter.removeAttribute('aria-activedescendant');
        p.show('');
      }
    };
    var render = function () {
      var q = filter.value.trim().toLowerCase();
      shown = replies.filter(function (r) {
        return !q || r.title.toLowerCase().indexOf(q) >= 0 || r.text.toLowerCase().indexOf(q) >= 0;
      });
      list.textContent = '';
      shown.forEach(function (r, i) {
        var li = el('li', 'canned-option', '', 'canned-option');
        li.id = 'canned-option-' + i;
        li.setAttribute('role', 'option');
        li.appendChild(el('strong', '', r.title));
        li.appendChild(el('span', 'canned-option-text', r.text));
        li.addEventListener('mousedown', function (e) { e.preventDefault(); });
        li.addEventListener('click', function () { chooseCanned(r.text); });
        list.appendChild(li);
      });
      if (shown.length === 0) {
        list.appendChild(el('li', 'canned-none', 'No canned reply matches.'));
      }
      select(0);
    };
    filter.addEventListener('input', render);
    filter.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        select(current + (e.key === 'ArrowDown' ? 1 : -1));
      }
    });
    onEnter(filter, function () {
      if (shown[current]) {
        chooseCanned(shown[current].text);
      }
    });
    render();
    filter.focus();
    return true;
  }

  // "/" typed into the empty composer opens the picker instead (read from the
  // input, so that every keyboard, virtual ones included, is heard).
  document.addEventListener('input', function (e) {
    var t = e.target;
    if (t && t.id === 'composer-text' && t.value === '/' && (!e.inputType || e.inputType === 'insertText') &&
      cannedReplies().length > 0) {
      t.value = '';
      updateCounter(t);
      updateUsage();
      openCanned();
    }
  });

  // Captured before the other key handlers: Escape inside the picker closes
  // it (it would otherwise leave the composer).
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (e.key === 'Escape' && t && t.closest && t.closest('#canned-picker')) {
      e.preventDefault();
      e.stopPropagation();
      closeCanned(true);
    }
  }, true);

  // -------------------------------------------------------------- contact card
  // A frame redraws the whole session panel when anything in the conversation
  // changes; the contact form an agent is editing is kept as it is (htmx's
  // hx-preserve, set on the incoming copy) until they save it.

  function formDirty(form) {
    var fields = form.querySelectorAll('input:not([type="hidden"]), textarea');
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) {
        return true;
      }
    }
    return false;
  }

  // A save sends only the fields the agent changed (the server keeps the
  // rest), so a colleague's edit of another field meanwhile is not undone.
  document.addEventListener('htmx:configRequest', function (e) {
    var form = e.detail && e.detail.elt;
    if (!form || form.id !== 'contact-form') {
      return;
    }
    var fields = form.querySelectorAll('input[name], textarea[name]');
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value === fields[i].defaultValue && !fields[i].hasAttribute('data-send')) {
        if (e.detail.formData) {
          e.detail.formData.delete(fields[i].name);
        }
        if (e.detail.parameters) {
          delete e.detail.parameters[fields[i].name];
        }
      }
    }
  });

  document.addEventListener('htmx:oobBeforeSwap', function (e) {
    var d = e.detail;
    if (!d || !d.target || d.target.id !== 'session-panel' || !d.fragment) {
      return;
    }
    var form = document.getElementById('contact-form');
    if (!form || !(form.contains(document.activeElement) || formDirty(form))) {
      return;
    }
    var incoming = d.fragment.querySelector('#contact-form');
    if (incoming) {
      incoming.setAttribute('hx-preserve', 'true');
    }
  });

  // ------------------------------------------------------------ keyboard help
  // ? opens the list of every key (views.Keys), a modal dialog: the focus
  // stays in it, Escape (or Close) closes it and gives the focus back.

  var keysReturn = null;

  function openKeys() {
    var d = document.getElementById('keys-help');
    if (!d || d.open) {
      return;
    }
    keysReturn = document.activeElement;
    if (typeof d.showModal === 'function') {
      d.showModal();
    } else {
      d.setAttribute('open', '');
    }
    var close = d.querySelector('[data-close-keys]');
    if (close) {
      close.focus();
    }
  }

  function closeKeys() {
    var d = document.getElementById('keys-help');
    if (d && d.open) {
      if (typeof d.close === 'function') {
        d.close();
      } else {
        d.removeAttribute('open');
      }
    }
  }

  document.addEventListener('close', function (e) {
    if (e.target && e.target.id === 'keys-help' && keysReturn && keysReturn.focus) {
      keysReturn.focus();
      keysReturn = null;
    }
  }, true);

  document.addEventListener('click', function (e) {
    if (e.target.closest && e.target.closest('[data-open-keys]')) {
      openKeys();
    } else if (e.target.closest && e.target.closest('[data-close-keys]')) {
      closeKeys();
    } else if (e.target.id === 'keys-help') {
      closeKeys(); // a click on the backdrop
    }
  });

  document.addEventListener('keydown', function (e) {
    var d = document.getElementById('keys-help');
    if (d && d.open) {
      if (e.key === 'Escape') {
        e.preventDefault();
        closeKeys();
      } else if (e.key === 'Tab') {
        // Keep the focus among the dialog's own controls.
        var f = d.querySelectorAll('button, [href], input, [tabindex]:not([tabindex="-1"])');
        if (f.length === 0) {
          return;
        }
        var first = f[0];
        var last = f[f.length - 1];
        if (!d.contains(document.activeElement) || (e.shiftKey && document.activeElement === first) ||
          (!e.shiftKey && document.activeElement === last)) {
          e.preventDefault();
          (e.shiftKey ? last : first).focus();
        }
      }
      return;
    }
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) {
      return;
    }
    if (e.key === '?') {
      e.preventDefault();
      openKeys();
    } else if (e.key === 'c') {
      // The contact: its form in the panel, or on a phone the panel's page.
      var name = document.querySelector('#contact-form [name="name"]');
      if (!name) {
        return;
      }
      e.preventDefault();
      var link = document.querySelector('[data-testid="open-contact"]');
      if (!name.getClientRects().length && link) {
        window.location.href = link.href;
        return;
      }
      name.focus();
      name.select();
    }
  });

  // --------------------------------------------------------------------- search

  // Key / focuses the search field when no field has the focus (in the
  // composer, / is typed, or opens the canned replies). Escape leaves the
  // field, so that j and k work again; the text and results stay.
  document.addEventListener('keydown', function (e) {
    var input = document.getElementById('search-input');
    if (!input) {
      return;
    }
    if (e.key === 'Escape' && e.target === input) {
      input.blur();
      return;
    }
    if (e.key !== '/' || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) {
      return;
    }
    e.preventDefault();
    swallowSlash = true;
    input.focus();
    input.select();
  });

  // The / that focused the field is not typed into it. Cancelling the keydown
  // is enough in a browser driven by a keyboard; a character delivered on its
  // own afterwards (remote-driven browsers, some input methods) is dropped
  // here, until the key is released.
  var swallowSlash = false;
  document.addEventListener('keypress', function (e) {
    if (swallowSlash && e.key === '/') {
      e.preventDefault();
    }
  }, true);
  document.addEventListener('keyup', function (e) {
    if (e.key === '/') {
      swallowSlash = false;
    }
  }, true);

  // A search result links to /c/{id}?around={mid}#msg-{mid}: show that message
  // (centred, marked) instead of the newest. Runs after the thread scrolled to
  // its bottom, and once more after the layout settles.
  function showLinkedMessage() {
    var m = /^#msg-(\d+)$/.exec(window.location.hash);
    var el = m && document.getElementById('msg-' + m[1]);
    if (!el || el.hasAttribute('data-found')) {
      return;
    }
    el.setAttribute('data-found', '');
    el.classList.add('is-found');
    var show = function () {
      el.scrollIntoView({ block: 'center' });
    };
    show();
    if (typeof requestAnimationFrame === 'function') {
      requestAnimationFrame(function () {
        requestAnimationFrame(show);
      });
    }
  }

  // ------------------------------------------------------------------ tab title

  // The tab says how many conversations of the agent's views (Mine and
  // Unassigned) are unread for them: "(3) Sessiondesk". The server renders
  // it and sends it with the counts; the page's own read takes one off.
  function updateTitle() {
    var list = document.getElementById('conversation-list');
    if (!list) {
      return;
    }
    var n = Number(list.getAttribute('data-unread-total')) || 0;
    var base = document.title.replace(/^\(\d+\) /, '');
    var title = n > 0 ? '(' + n + ') ' + base : base;
    if (document.title !== title) {
      document.title = title;
    }
  }

  // ------------------------------------------------- presence and collisions
  // The page tells the server while its agent types ({"typing":true} at most
  // every 2 s, {"typing":false} on send and blur); the server sends the
  // thread header's presence line (#presence-{id}) of the other agents. Before
  // a send while another agent types there, or into a conversation assigned
  // to another agent, the composer asks first, inline.

  var TYPING_EVERY = 2 * SECOND;
  var typingSentAt = 0;

  function sendLive(obj) {
    if (liveSocket && liveSocket.readyState === 1) {
      liveSocket.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  function typingStarted() {
    var now = Date.now();
    if (now - typingSentAt >= TYPING_EVERY && sendLive({ typing: true })) {
      typingSentAt = now;
    }
  }

  function typingStopped() {
    if (typingSentAt !== 0) {
      typingSentAt = 0;
      sendLive({ typing: false });
    }
  }

  document.addEventListener('input', function (e) {
    if (e.target && e.target.id === 'composer-text' && e.target.value !== '') {
      typingStarted();
    }
  });

  document.addEventListener('focusout', function (e) {
    if (e.target && e.target.id === 'composer-text') {
      typingStopped();
    }
  });

  function myAgentID() {
    var bar = document.querySelector('.topbar[data-agent-id]');
    return bar ? bar.getAttribute('data-agent-id') : '';
  }

  // collision says why a send should be confirmed first, or ''.
  function collision() {
    var thread = document.querySelector('[data-testid="thread"][data-conversation-id]');
    if (!thread) {
      return '';
    }
    var line = document.getElementById('presence-' + thread.getAttribute('data-conversation-id'));
    var typing = line && line.querySelector('[data-typing="true"][data-agent-name]');
    if (typing) {
      return typing.getAttribute('data-agent-name') + ' is typing here: send anyway?';
    }
    // The assignment, from the thread header (kept live by the frames).
    var assigned = document.getElementById('thread-status');
    var who = assigned ? assigned.getAttribute('data-assignee-id') : '';
    if (who && who !== '0' && who !== myAgentID()) {
      var name = assigned.getAttribute('data-assignee-name') || 'another agent';
      return 'This conversation is assigned to ' + name + ': send anyway?';
    }
    return '';
  }

  function closeCollision(focusText) {
    var box = document.getElementById('collision-confirm');
    if (box) {
      box.remove();
    }
    var ta = document.getElementById('composer-text');
    if (focusText && ta) {
      ta.focus();
    }
  }

  function askCollision(question, proceed) {
    closeCollision(false);
    var actions = document.getElementById('composer-actions');
    if (!actions) {
      proceed();
      return;
    }
    var box = document.createElement('div');
    box.id = 'collision-confirm';
    box.className = 'collision-confirm';
    box.setAttribute('role', 'alertdialog');
    box.setAttribute('aria-live', 'assertive');
    box.setAttribute('data-testid', 'collision-confirm');
    var p = document.createElement('p');
    p.className = 'collision-question';
    p.id = 'collision-question';
    p.setAttribute('data-testid', 'collision-question');
    p.textContent = question;
    box.setAttribute('aria-labelledby', p.id);
    var send = document.createElement('button');
    send.type = 'button';
    send.className = 'btn btn-primary';
    send.setAttribute('data-testid', 'collision-send');
    send.textContent = 'Send anyway';
    var cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'btn btn-secondary';
    cancel.setAttribute('data-testid', 'collision-cancel');
    cancel.textContent = 'Cancel';
    send.addEventListener('click', function () {
      closeCollision(false);
      proceed();
    });
    cancel.addEventListener('click', function () { closeCollision(true); });
    box.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        closeCollision(true);
      }
    });
    box.appendChild(p);
    box.appendChild(send);
    box.appendChild(cancel);
    actions.parentNode.insertBefore(box, actions);
    send.focus();
  }

  // htmx asks before every request it makes: a composer send waits for the
  // agent's answer when it would collide.
  document.addEventListener('htmx:confirm', function (e) {
    var form = e.detail && e.detail.elt;
    if (!form || form.id !== 'composer') {
      return;
    }
    var question = collision();
    if (!question) {
      return;
    }
    e.preventDefault();
    // htmx forgets the button clicked once focus leaves it: keep its value
    // (the confirmation of a new billed session) for the send.
    var ev = e.detail.triggeringEvent;
    var button = ev && ev.submitter;
    askCollision(question, function () {
      var keep = null;
      if (button && button.name && document.body.contains(form)) {
        keep = document.createElement('input');
        keep.type = 'hidden';
        keep.name = button.name;
        keep.value = button.value;
        form.appendChild(keep);
      }
      e.detail.issueRequest(true);
      if (keep) {
        keep.remove();
      }
    });
  });

  document.addEventListener('htmx:beforeRequest', function (e) {
    if (e.detail && e.detail.elt && e.detail.elt.id === 'composer') {
      typingStopped();
    }
  });

  // ------------------------------------------------------------ notifications
  // A client's new message in Mine or Unassigned plays a short tone (if the
  // agent turned sound on) and, while the page is in the background, shows a
  // desktop notification (if turned on and allowed); so does a reminder of a
  // session about to close unanswered. New means after the newest message
  // the page was drawn with, once per message.

  var notifyFloor = null;
  var notifiedIn = {};
  var notifiedKeys = {};

  function pref(name) {
    var bar = document.querySelector('.topbar[data-agent-id]');
    return !!bar && bar.getAttribute('data-notify-' + name) === 'true';
  }

  // notifyWorthy is the rule "Mine or Unassigned": until conversations carry
  // an assignee (data-assignee-id on the row), every one counts as unassigned.
  function notifyWorthy(row) {
    var who = row.getAttribute('data-assignee-id');
    if (who === null) {
      who = row.getAttribute('data-assignee');
    }
    return !who || who === '0' || who === myAgentID();
  }

  var audio = null;

  function audioContext() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!audio && AC) {
      audio = new AC();
    }
    return audio;
  }

  // Browsers let a page make sound only after its user did something there.
  ['pointerdown', 'keydown'].forEach(function (name) {
    document.addEventListener(name, function () {
      if (pref('sound')) {
        var ac = audioContext();
        if (ac && ac.state === 'suspended') {
          ac.resume();
        }
      }
    }, { passive: true });
  });

  function beep() {
    try {
      var ac = audioContext();
      if (!ac) {
        return;
      }
      var t = ac.currentTime;
      var osc = ac.createOscillator();
      var gain = ac.createGain();
      osc.type = 'sine';
      osc.frequency.setValueAtTime(880, t);
      osc.frequency.setValueAtTime(660, t + 0.12);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      osc.connect(gain);
      gain.connect(ac.destination);
      osc.start(t);
      osc.stop(t + 0.32);
    } catch (err) {
      // No sound is no reason to break the page.
    }
  }

  function notify(n) {
    var played = false;
    if (pref('sound')) {
      beep();
      played = true;
    }
    var shown = false;
    if (pref('desktop') && document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      try {
        var note = new Notification(n.title, { body: n.body, tag: n.tag });
        note.onclick = function () {
          window.focus();
          if (n.url) {
            window.location.href = n.url;
          }
          note.close();
        };
        shown = true;
      } catch (err) {
        shown = false;
      }
    }
    // What happened, for the curious (and the browser tests).
    document.body.setAttribute('data-notified', n.tag + (played ? ' sound' : '') + (shown ? ' desktop' : ''));
  }

  function newInbound(row) {
    var id = row.getAttribute('data-conversation-id');
    var lastIn = Number(row.getAttribute('data-last-in')) || 0;
    if (lastIn <= (notifyFloor || 0) || lastIn <= (notifiedIn[id] || 0)) {
      return;
    }
    notifiedIn[id] = lastIn;
    if (!notifyWorthy(row)) {
      return;
    }
    var thread = document.querySelector('[data-testid="thread"][data-conversation-id]');
    if (!document.hidden && thread && thread.getAttribute('data-conversation-id') === id) {
      return; // the agent is looking at it
    }
    var name = row.querySelector('[data-testid="row-name"]');
    var text = row.querySelector('[data-testid="row-preview"]');
    var link = row.querySelector('a[href]');
    notify({
      title: (name ? name.textContent : 'A client') + ' wrote',
      body: text ? text.textContent : '',
      url: link ? link.href : '',
      tag: 'message-' + lastIn
    });
  }

  function noticeOf(el) {
    var key = el.getAttribute('data-notify-key');
    if (!key || notifiedKeys[key]) {
      return;
    }
    notifiedKeys[key] = true;
    notify({
      title: el.getAttribute('data-notify-title') || '',
      body: el.getAttribute('data-notify-body') || '',
      url: el.getAttribute('data-notify-url') ? new URL(el.getAttribute('data-notify-url'), window.location.href).toString() : '',
      tag: key
    });
  }

  // Frames are read before htmx swaps them in (the list's rows leave
  // #list-delta as soon as they are placed).
  document.addEventListener('htmx:wsBeforeMessage', function (e) {
    var msg = e.detail && e.detail.message;
    if (notifyFloor === null || typeof msg !== 'string' ||
        (msg.indexOf('data-last-in=') < 0 && msg.indexOf('data-notify-key=') < 0)) {
      return;
    }
    var t = document.createElement('template');
    t.innerHTML = msg;
    t.content.querySelectorAll('[data-conversation-id][data-last-in]').forEach(newInbound);
    t.content.querySelectorAll('[data-notify-key]').forEach(noticeOf);
  });

  function permissionState() {
    var el = document.querySelector('[data-notify-permission-state]');
    if (!el) {
      return;
    }
    if (!('Notification' in window)) {
      el.textContent = 'This browser has no desktop notifications.';
    } else if (Notification.permission === 'granted') {
      el.textContent = 'Allowed in this browser.';
    } else if (Notification.permission === 'denied') {
      el.textContent = 'Blocked in this browser\u2019s site settings.';
    } else {
      el.textContent = '';
    }
  }

  document.addEventListener('click', function (e) {
    if (!e.target.closest || !e.target.closest('[data-notify-permission]')) {
      return;
    }
    if ('Notification' in window && Notification.permission === 'default') {
      Notification.requestPermission().then(permissionState, permissionState);
    }
    permissionState();
  });

  function startNotifications() {
    var el = document.getElementById('live-notify');
    if (el && el.hasAttribute('data-max-message-id')) {
      notifyFloor = Number(el.getAttribute('data-max-message-id')) || 0;
    }
    permissionState();
  }

  // ------------------------------------------------------------ wiring with htmx

  function refresh() {
    localizeTimes();
    syncClock();
    tick();
    watchScrollers();
    updateCounter(document.getElementById('composer-text'));
    updateUsage();
    updateTitle();
  }

  ['htmx:afterSwap', 'htmx:oobAfterSwap', 'htmx:afterSettle', 'htmx:wsAfterMessage'].forEach(function (name) {
    document.addEventListener(name, refresh);
  });

  function ready() {
    startNotifications();
    localizeTimes();
    startClock();
    watchScrollers();
    showLinkedMessage();
    updateCounter(document.getElementById('composer-text'));
    updateUsage();
    updateTitle();
  }

  // ------------------------------------------------------------ paid messages
  // Picking a template for a paid message puts its approved text in the draft.
  document.addEventListener('change', function (e) {
    var sel = e.target;
    if (!sel || !sel.hasAttribute || !sel.hasAttribute('data-paid-template')) {
      return;
    }
    var opt = sel.options[sel.selectedIndex];
    var ta = document.getElementById('paid-text');
    if (ta && opt && opt.getAttribute('data-body') !== null) {
      ta.value = opt.getAttribute('data-body');
    }
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', ready);
  } else {
    ready();
  }
})();
