// The flow editor: the trigger fields of the chosen event, the steps as an ordered list, and
// the mail menu of the live preview. Without this script every trigger field shows, the steps
// are edited as JSON in their textarea and the Preview button posts its form; the server checks
// everything either way. With it, the steps are a list of mail, wait and condition cards that
// can be added, moved and removed; the list writes the textarea on every change, so the form
// posts the flow's JSON as it is. Steps are edited in place in the parsed JSON, so fields the
// list does not show (a voucher, deeper branches) are posted back untouched. Each error the
// server found is shown next to the step its JSON path names ("steps.2.then.0.mail.subject"),
// and stays with that step when steps move.
(function () {
  'use strict';

  // ---- trigger fields ------------------------------------------------------------------------

  var eventSelect = document.getElementById('f-event');
  function showTriggerFields() {
    var fields = document.querySelectorAll('.flow-tfield');
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      var show = f.getAttribute('data-events').split(' ').indexOf(eventSelect.value) >= 0;
      var needs = f.getAttribute('data-needs');
      if (show && needs) {
        show = document.getElementById(needs).checked;
      }
      f.hidden = !show;
    }
  }
  if (eventSelect) {
    eventSelect.addEventListener('change', showTriggerFields);
    var personal = document.getElementById('f-personal');
    if (personal) {
      personal.addEventListener('change', showTriggerFields);
    }
    showTriggerFields();
  }

  // ---- steps -----------------------------------------------------------------------------------

  var root = document.getElementById('flow-steps');
  var textarea = document.getElementById('f-steps');
  var listProblem = document.getElementById('flow-steps-error');
  var model = null;
  try {
    model = textarea ? JSON.parse(textarea.value || '[]') : null;
  } catch (e) {
    model = null;
  }
  if (!root || !Array.isArray(model)) {
    return setUpPreview(); // the textarea stays the editor
  }

  var errors = JSON.parse(root.getAttribute('data-errors') || 'null') || {};
  // stepErrors holds each step object's errors by field (subject, html, text, mail, wait, if,
  // then, else, step), so that they move with the step.
  var stepErrors = new Map();
  var listErrors = [];
  (function placeErrors() {
    var byPath = {};
    (function walk(list, path) {
      list.forEach(function (s, i) {
        var at = path + '.' + i;
        byPath[at] = s;
        if (s && typeof s === 'object') {
          if (Array.isArray(s.then)) { walk(s.then, at + '.then'); }
          if (Array.isArray(s['else'])) { walk(s['else'], at + '.else'); }
        }
      });
    }(model, 'steps'));
    Object.keys(errors).forEach(function (key) {
      if (key !== 'steps' && key.indexOf('steps.') !== 0) {
        return; // the trigger's and the name's errors are shown by the server
      }
      var parts = key.split('.');
      for (var n = parts.length; n > 1; n--) {
        var step = byPath[parts.slice(0, n).join('.')];
        if (step && typeof step === 'object') {
          var rest = parts.slice(n);
          var field = rest.length === 0 ? 'step' : rest[0];
          if (field === 'mail' && rest.length > 1) { field = rest[1]; }
          var e = stepErrors.get(step) || {};
          e[field] = e[field] ? e[field] + '; ' + errors[key] : errors[key];
          stepErrors.set(step, e);
          return;
        }
      }
      listErrors.push((key === 'steps' ? 'Steps' : key) + ': ' + errors[key]);
    });
  }());

  var seq = 0;
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) { n.textContent = text; }
    return n;
  }

  function kindOf(s) {
    if (s && s.mail) { return 'mail'; }
    if (s && typeof s.wait === 'string') { return 'wait'; }
    if (s && s['if'] !== undefined) { return 'if'; }
    return 'other';
  }
  var kindNames = { mail: 'Mail', wait: 'Wait', 'if': 'Condition', other: 'Other step' };

  function save() {
    textarea.value = JSON.stringify(model, null, 2);
  }

  // field adds a labelled input or textarea bound to get/set, with its error if any.
  function field(box, label, value, set, opts, error) {
    var id = 'fs-' + (++seq);
    var wrap = el('div', { 'class': 'camp-field' });
    wrap.appendChild(el('label', { 'for': id }, label));
    var input = el(opts.rows ? 'textarea' : 'input', { id: id, spellcheck: 'false' });
    if (opts.rows) {
      input.setAttribute('rows', opts.rows);
      input.className = 'camp-code';
    } else {
      input.setAttribute('type', 'text');
    }
    if (opts.name) { input.setAttribute('data-field', opts.name); }
    input.value = value;
    input.addEventListener('input', function () { set(input.value); save(); });
    wrap.appendChild(input);
    if (opts.hint) { wrap.appendChild(el('p', { 'class': 'camp-hint' }, opts.hint)); }
    if (error) {
      var eid = id + '-error';
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', eid);
      wrap.appendChild(el('p', { 'class': 'camp-error', id: eid }, error));
    }
    box.appendChild(wrap);
  }

  function button(label, cls, onClick, aria) {
    var b = el('button', { type: 'button', 'class': 'camp-button flow-small ' + (cls || '') }, label);
    if (aria) { b.setAttribute('aria-label', aria); }
    b.addEventListener('click', onClick);
    return b;
  }

  // focusAfter re-renders and puts the focus on the element the change leaves in view.
  function changed(focusSelector) {
    save();
    render();
    if (focusSelector) {
      var f = root.querySelector(focusSelector);
      if (f) { f.focus(); }
    }
  }

  function newStep(kind) {
    if (kind === 'mail') { return { mail: { subject: '', html: '', text: '' } }; }
    if (kind === 'wait') { return { wait: '72h' }; }
    return { 'if': { all: [{ field: 'p_alive', op: 'lt', value: 0.5 }] }, then: [] };
  }

  // renderList draws list (at JSON path path) into box, with the buttons to add steps.
  function renderList(box, list, path, label) {
    var ol = el('ol', { 'class': 'flow-list', 'data-path': path });
    list.forEach(function (s, i) { ol.appendChild(renderStep(list, i, path + '.' + i, label)); });
    box.appendChild(ol);
    var add = el('div', { 'class': 'flow-add', 'data-path': path });
    ['mail', 'wait', 'if'].forEach(function (kind) {
      add.appendChild(button('Add ' + kindNames[kind].toLowerCase(), 'flow-add-' + kind, function () {
        list.push(newStep(kind));
        changed('[data-path="' + path + '.' + (list.length - 1) + '"] input, [data-path="' + path + '.' + (list.length - 1) + '"] textarea');
      }, 'Add a ' + kindNames[kind].toLowerCase() + ' step' + (label ? ' to ' + label : '')));
    });
    box.appendChild(add);
  }

  function renderStep(list, i, path, label) {
    var s = list[i];
    var kind = kindOf(s);
    var errs = stepErrors.get(s) || {};
    var li = el('li', { 'class': 'flow-step flow-step-' + kind, 'data-path': path, 'data-kind': kind });
    var head = el('div', { 'class': 'flow-step-head' });
    var name = (label ? label + ', ' : '') + 'step ' + (i + 1);
    head.appendChild(el('h3', {}, (i + 1) + '. ' + kindNames[kind]));
    var up = button('↑', 'flow-up', function () {
      list.splice(i - 1, 0, list.splice(i, 1)[0]);
      changed('[data-path="' + path.replace(/\d+$/, String(i - 1)) + '"] .flow-up');
    }, 'Move ' + name + ' up');
    up.disabled = i === 0;
    var down = button('↓', 'flow-down', function () {
      list.splice(i + 1, 0, list.splice(i, 1)[0]);
      changed('[data-path="' + path.replace(/\d+$/, String(i + 1)) + '"] .flow-down');
    }, 'Move ' + name + ' down');
    down.disabled = i === list.length - 1;
    head.appendChild(up);
    head.appendChild(down);
    head.appendChild(button('Remove', 'camp-danger flow-remove', function () {
      list.splice(i, 1);
      changed(null);
    }, 'Remove ' + name));
    li.appendChild(head);
    if (errs.step) { li.appendChild(el('p', { 'class': 'camp-error' }, errs.step)); }

    if (kind === 'mail') {
      var m = s.mail;
      if (errs.mail) { li.appendChild(el('p', { 'class': 'camp-error' }, errs.mail)); }
      field(li, 'Subject', m.subject || '', function (v) { m.subject = v; }, { name: 'subject' }, errs.subject);
      field(li, 'HTML body', m.html || '', function (v) { m.html = v; }, { name: 'html', rows: 6 }, errs.html);
      field(li, 'Text body', m.text || '', function (v) { m.text = v; }, { name: 'text', rows: 4 }, errs.text);
    } else if (kind === 'wait') {
      field(li, 'Wait for', s.wait, function (v) { s.wait = v; },
        { name: 'wait', hint: 'A duration: 30m, 72h, 168h (a week). At least 1m.' }, errs.wait);
    } else if (kind === 'if') {
      var text = typeof s['if'] === 'string' ? s['if'] : JSON.stringify(s['if'], null, 2);
      // A rule tree that is not JSON yet is kept as typed (a string), so nothing is lost; the
      // server then says what is wrong with it.
      field(li, 'If the member matches (segment rules as JSON)', text, function (v) {
        try { s['if'] = JSON.parse(v); } catch (e) { s['if'] = v; }
      }, { name: 'if', rows: 5, hint: 'For example {"all": [{"field": "p_alive", "op": "lt", "value": 0.5}]}; the fields are those of segments.' }, errs['if']);
      ['then', 'else'].forEach(function (branch) {
        if (!Array.isArray(s[branch])) { s[branch] = []; }
        var box = el('div', { 'class': 'flow-branch' });
        box.appendChild(el('h4', {}, branch === 'then' ? 'Then' : 'Otherwise'));
        if (errs[branch]) { box.appendChild(el('p', { 'class': 'camp-error' }, errs[branch])); }
        renderList(box, s[branch], path + '.' + branch, name + ' ' + (branch === 'then' ? 'then' : 'otherwise'));
        li.appendChild(box);
      });
    } else {
      li.appendChild(el('p', { 'class': 'camp-hint' }, 'This step is kept as it is (edit it in the JSON view):'));
      li.appendChild(el('pre', { 'class': 'camp-pre' }, JSON.stringify(s, null, 2)));
    }
    return li;
  }

  function render() {
    while (root.firstChild) { root.removeChild(root.firstChild); }
    renderList(root, model, 'steps', '');
    if (model.length === 0) {
      root.insertBefore(el('p', { 'class': 'camp-hint flow-none' }, 'No steps yet: add a mail, a wait or a condition.'), root.firstChild);
    }
  }

  // Empty branches are dropped when saved, as the server stores them.
  document.getElementById('flow-form').addEventListener('submit', function () {
    (function prune(list) {
      list.forEach(function (s) {
        ['then', 'else'].forEach(function (b) {
          if (Array.isArray(s[b])) {
            prune(s[b]);
            if (s[b].length === 0) { delete s[b]; }
          }
        });
      });
    }(model));
    save();
  });

  if (listErrors.length) {
    listProblem.textContent = listErrors.join(' ');
    listProblem.hidden = false;
  }
  document.getElementById('flow-json').hidden = true;
  root.hidden = false;
  render();
  save();
  setUpPreview();

  // ---- preview ---------------------------------------------------------------------------------

  // The live preview is console-campaigns.js's, which fetches the member select's
  // data-preview-url; the mail menu points that at the chosen step and asks again.
  function setUpPreview() {
    var stepSelect = document.getElementById('p-step');
    var memberSelect = document.getElementById('p-member');
    if (!stepSelect || !memberSelect) {
      return;
    }
    stepSelect.addEventListener('change', function () {
      memberSelect.setAttribute('data-preview-url', stepSelect.getAttribute('data-preview-url').replace('{step}', stepSelect.value));
      memberSelect.dispatchEvent(new Event('change'));
    });
  }
}());
