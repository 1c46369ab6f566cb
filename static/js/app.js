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
  // its place by (data-activity, id), newest first as the server orders them:
  // a row shown with the same activity is replaced where it is, one whose
  // activity moved is moved, and one that belongs below the last loaded row
  // waits for "Load more". Shared rows carry no per-page state, so the open
  // conversation is marked here. A "reload" frame (the page fell too far
  // behind to catch up) reloads the page.

  function rowKey(el) {
    return [Number(el.getAttribute('data-activity')) || 0, Number(el.getAttribute('data-conversation-id')) || 0];
  }

  function newerKey(a, b) {
    return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  }

  function rowOf(list, id) {
    for (var i = 0; i < list.children.length; i++) {
      if (list.children[i].getAttribute('data-conversation-id') === id) {
        return list.children[i];
      }
    }
    return null;
  }

  function placeRow(list, row) {
    var old = rowOf(list, row.getAttribute('data-conversation-id'));
    if (old && old.getAttribute('data-activity') === row.getAttribute('data-activity')) {
      list.replaceChild(row, old);
      return;
    }
    if (old) {
      list.removeChild(old);
    }
    var key = rowKey(row);
    for (var i = 0; i < list.children.length; i++) {
      if (newerKey(key, rowKey(list.children[i]))) {
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
    var delta = document.getElementById('list-delta');
    var list = document.getElementById('conversation-rows');
    if (!delta || !list || delta.children.length === 0) {
      return;
    }
    var active = document.activeElement;
    var focusID = active && list.contains(active) && active.closest('[data-conversation-id]')
      ? active.closest('[data-conversation-id]').getAttribute('data-conversation-id')
      : null;
    var rows = Array.prototype.slice.call(delta.children);
    delta.textContent = '';
    rows.forEach(function (row) { placeRow(list, row); });
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
  document.addEventListener('htmx:afterSwap', function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === 'conversation-rows') {
      listChanged();
    }
  });

  document.addEventListener('htmx:wsBeforeMessage', function (e) {
    var m = e.detail && e.detail.message;
    if (typeof m === 'string' && m.indexOf('id="live-reload"') >= 0) {
      e.preventDefault();
      window.location.reload();
    }
  });

  // ---------------------------------------------------------------- attachments
  // The composer's files live in its <input type=file>; picking, dropping and
  // pasting all add to it (through a DataTransfer), and the previews can remove
  // one. Before anything is sent, the usage line counts the messages the send
  // will use (S5: the text, then one per attachment) against what the session
  // allows; the server checks again.

  var IMAGE_WARN = 400 * 1000; // Routee's recommended sizes
  var FILE_WARN = 600 * 1000;

  function filesInput() {
    return document.getElementById('composer-files');
  }

  function isImageFile(f) {
    return /\.(jpe?g|png)$/i.test(f.name) || f.type === 'image/jpeg' || f.type === 'image/png';
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

  function setFiles(list) {
    var input = filesInput();
    if (!input) {
      return;
    }
    var dt = new DataTransfer();
    list.forEach(function (f) { dt.items.add(f); });
    input.files = dt.files;
    renderAttachments();
  }

  function currentFiles() {
    var input = filesInput();
    return input && input.files ? Array.prototype.slice.call(input.files) : [];
  }

  function addFiles(files) {
    var list = currentFiles();
    for (var i = 0; i < files.length; i++) {
      var f = files[i];
      if (f.name === 'image.png' && f.type === 'image/png') {
        // A pasted screenshot: give it a name that says what it is.
        f = new File([f], 'screenshot-' + new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-') + '.png', { type: f.type });
      }
      list.push(f);
    }
    setFiles(list);
  }

  function renderAttachments() {
    var box = document.getElementById('composer-previews');
    if (!box) {
      return;
    }
    box.querySelectorAll('img').forEach(function (img) { URL.revokeObjectURL(img.src); });
    box.textContent = '';
    var files = currentFiles();
    box.hidden = files.length === 0;
    files.forEach(function (f, i) {
      var li = document.createElement('li');
      li.className = 'preview';
      li.setAttribute('data-testid', 'composer-preview');
      if (isImageFile(f)) {
        var img = document.createElement('img');
        img.src = URL.createObjectURL(f);
        img.alt = '';
        li.appendChild(img);
      } else {
        var ext = document.createElement('span');
        ext.className = 'file-type';
        ext.textContent = (f.name.split('.').pop() || 'file').toUpperCase().slice(0, 5);
        li.appendChild(ext);
      }
      var info = document.createElement('span');
      info.className = 'preview-info';
      var name = document.createElement('span');
      name.className = 'preview-name';
      name.textContent = f.name;
      var meta = document.createElement('span');
      meta.className = 'preview-meta';
      meta.textContent = sizeText(f.size);
      info.appendChild(name);
      info.appendChild(meta);
      var warn = isImageFile(f) ? (f.size > IMAGE_WARN && 'Routee recommends images up to 400 KB')
        : (f.size > FILE_WARN && 'Routee recommends files up to 600 KB');
      if (warn) {
        var w = document.createElement('span');
        w.className = 'preview-warn';
        w.textContent = warn;
        info.appendChild(w);
      }
      if (f.name.length > 25 && !isImageFile(f)) {
        var n = document.createElement('span');
        n.className = 'preview-warn';
        n.textContent = 'Viber allows file names up to 25 characters';
        info.appendChild(n);
      }
      li.appendChild(info);
      var rm = document.createElement('button');
      rm.type = 'button';
      rm.className = 'preview-remove';
      rm.setAttribute('aria-label', 'Remove ' + f.name);
      rm.setAttribute('data-testid', 'composer-preview-remove');
      rm.textContent = '×';
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

  // updateUsage says how many messages the send will use and refuses it here
  // when the session cannot take them (spec case 16).
  function updateUsage() {
    var actions = document.getElementById('composer-actions');
    var ta = document.getElementById('composer-text');
    if (!actions || !ta || actions.getAttribute('data-can-send') !== 'true') {
      return;
    }
    var files = currentFiles().length;
    var n = files + (ta.value.trim() !== '' || files === 0 ? 1 : 0);
    var left = Number(actions.getAttribute('data-unanswered-left'));
    var remaining = Number(actions.getAttribute('data-remaining'));
    var usage = actions.querySelector('[data-testid="composer-usage"]');
    var send = actions.querySelector('[data-testid="composer-send"]');
    var over = n > left;
    if (usage) {
      usage.textContent = over
        ? 'This send needs ' + n + ' messages but only ' + left + ' more may go before the client must reply. Remove ' + (n - left) + '.'
        : 'Uses ' + n + (n === 1 ? ' message' : ' messages') + ' · ' + remaining + ' left in this session · ' +
          left + ' more before the client must reply';
      usage.classList.toggle('is-over', over);
    }
    if (send) {
      send.disabled = over;
    }
  }

  document.addEventListener('change', function (e) {
    if (e.target && e.target.id === 'composer-files') {
      renderAttachments();
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

  // A canned reply goes into the draft where the cursor is; the agent still sends it.
  document.addEventListener('click', function (e) {
    var chip = e.target.closest && e.target.closest('[data-canned]');
    var ta = document.getElementById('composer-text');
    if (!chip || !ta) {
      return;
    }
    var text = chip.getAttribute('data-canned');
    var start = ta.selectionStart || 0;
    var end = ta.selectionEnd || 0;
    ta.value = ta.value.slice(0, start) + text + ta.value.slice(end);
    ta.selectionStart = ta.selectionEnd = start + text.length;
    ta.focus();
    updateCounter(ta);
    updateUsage();
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
    if (e.key === 'Escape') {
      closeLightbox();
    }
  });

  // ------------------------------------------------------------ wiring with htmx

  function refresh() {
    syncClock();
    tick();
    watchScrollers();
    updateCounter(document.getElementById('composer-text'));
    updateUsage();
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
