// The campaign editor's live preview: when a sample member is chosen, fetch the saved campaign
// rendered for them and show it in the sandboxed frame. Without this script the Preview button
// posts the form and the server renders the same preview into the page.
(function () {
  'use strict';
  var select = document.getElementById('p-member');
  var frame = document.getElementById('camp-preview-frame');
  if (!select || !frame) {
    return;
  }
  var subject = document.getElementById('camp-preview-subject');
  var text = document.getElementById('camp-preview-text');
  var problem = document.getElementById('camp-preview-error');
  var card = document.getElementById('p-card');

  function show(message) {
    problem.textContent = message;
    problem.hidden = !message;
  }

  function load() {
    var id = select.value;
    if (!id) {
      return;
    }
    var url = select.getAttribute('data-preview-url') + '?member_id=' + encodeURIComponent(id);
    frame.setAttribute('aria-busy', 'true');
    fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (res) {
        return res.json().then(function (body) { return { ok: res.ok, body: body }; });
      })
      .then(function (r) {
        frame.removeAttribute('aria-busy');
        if (!r.ok) {
          var e = r.body && r.body.error ? r.body.error : {};
          var fields = e.fields ? Object.keys(e.fields).map(function (k) { return k + ': ' + e.fields[k]; }).join('; ') : '';
          show('No preview: ' + (e.message || 'the server refused') + (fields ? ' (' + fields + ')' : ''));
          return;
        }
        show('');
        subject.textContent = r.body.subject;
        text.textContent = r.body.text;
        frame.srcdoc = r.body.html;
        frame.setAttribute('data-loaded', id);
      })
      .catch(function () {
        frame.removeAttribute('aria-busy');
        show('No preview: the server could not be reached.');
      });
  }

  select.addEventListener('change', function () {
    if (card) {
      card.value = '';
    }
    load();
  });
  // A page the server rendered with a preview already shows it; otherwise show the first
  // sample member's.
  if (!frame.hasAttribute('srcdoc')) {
    load();
  }
}());

// The text body is made from the HTML when saved while "make the text body from the HTML" is
// ticked: the box then keeps the textarea read-only, so nobody types into text that is replaced.
(function () {
  'use strict';
  var auto = document.getElementById('f-text-auto');
  var text = document.getElementById('f-text');
  if (!auto || !text) {
    return;
  }
  auto.addEventListener('change', function () {
    text.readOnly = auto.checked;
    if (!auto.checked) {
      text.focus();
    }
  });
}());
