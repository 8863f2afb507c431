// The segment builder: a visual editor of a segment's rule tree on top of the form's JSON
// textarea. Without this script the textarea is the editor (the server validates it); with it,
// rows of (field, operator, value) in all/any/none groups write the textarea on every change,
// and the member count, mailable count and a sample come live from
// GET /console/api/segments/preview (debounced). Plain JS, no framework, no inline script: the
// field registry comes in the builder element's data-builder attribute.
(function () {
  'use strict';

  var root = document.getElementById('rule-builder');
  var textarea = document.getElementById('segment-rules');
  if (!root || !textarea || !window.fetch) {
    return;
  }
  var cfg = JSON.parse(root.getAttribute('data-builder'));
  var csrf = root.getAttribute('data-csrf') || '';
  var fields = {};
  cfg.fields.forEach(function (f) { fields[f.name] = f; });
  // A "none" group is {"not": {"any": [...]}}: two levels of the tree per group at most, so the
  // builder nests groups only as deep as segments.Parse allows either way.
  var maxGroupDepth = Math.floor((cfg.maxDepth - 1) / 2);

  var opLabels = {
    eq: 'is', ne: 'is not', lt: 'is less than', lte: 'is at most', gt: 'is more than', gte: 'is at least',
    between: 'is between', in: 'is one of', not_in: 'is none of', contains: 'contains',
    starts_with: 'starts with', is_null: 'is empty', is_not_null: 'is not empty'
  };
  var kindLabels = { all: 'all', any: 'any', none: 'none' };

  var model = null; // {kind, children: [group|rule]}; a rule is {field, op, value}
  var seq = 0;

  // ---- the tree as JSON and back -----------------------------------------------------------

  function isRule(n) { return n && typeof n.field === 'string'; }

  // fromJSON turns a parsed tree into the model, or returns null when the visual builder cannot
  // show it (the textarea stays the editor then).
  function fromJSON(n) {
    var g = groupFromJSON(n);
    if (g) { return g; }
    if (isRule(n)) { return { kind: 'all', children: [ruleFromJSON(n)] }; }
    return null;
  }

  function groupFromJSON(n) {
    if (!n || typeof n !== 'object' || Array.isArray(n)) { return null; }
    var keys = Object.keys(n);
    if (keys.length !== 1) { return null; }
    var kind = keys[0], list;
    if (kind === 'all' || kind === 'any') {
      list = n[kind];
    } else if (kind === 'not' && n.not && Array.isArray(n.not.any) && Object.keys(n.not).length === 1) {
      kind = 'none';
      list = n.not.any;
    } else {
      return null;
    }
    if (!Array.isArray(list)) { return null; }
    var children = [];
    for (var i = 0; i < list.length; i++) {
      var c = isRule(list[i]) ? ruleFromJSON(list[i]) : groupFromJSON(list[i]);
      if (!c) { return null; }
      children.push(c);
    }
    return { kind: kind, children: children };
  }

  function ruleFromJSON(n) {
    return { field: n.field, op: n.op || '', value: n.value === undefined ? null : n.value };
  }

  function toJSON(n) {
    if (!n.children) {
      var r = { field: n.field, op: n.op };
      if (n.op !== 'is_null' && n.op !== 'is_not_null') { r.value = n.value; }
      return r;
    }
    var list = n.children.map(toJSON);
    if (n.kind === 'none') { return { not: { any: list } }; }
    var g = {};
    g[n.kind] = list;
    return g;
  }

  function countRules(n) {
    if (!n.children) { return 1; }
    return n.children.reduce(function (s, c) { return s + countRules(c); }, 0);
  }

  // ---- values --------------------------------------------------------------------------------

  function defaultValue(f, op) {
    if (op === 'is_null' || op === 'is_not_null') { return null; }
    if (op === 'between') { return [null, null]; }
    if (op === 'in' || op === 'not_in') { return []; }
    if (f.type === 'enum') { return f.values[0]; }
    return null;
  }

  // parseValue reads an input's text as the field's type; '' is null (the server says required).
  function parseValue(f, text) {
    text = text.trim();
    if (text === '') { return null; }
    if (f.type === 'integer') {
      var i = Number(text);
      return Number.isInteger(i) ? i : text;
    }
    if (f.type === 'number') {
      var x = Number(text);
      return isNaN(x) ? text : x;
    }
    return text;
  }

  function valueText(v) { return v === null || v === undefined ? '' : String(v); }

  // ---- rendering -----------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  function option(value, label, selected) {
    var o = el('option', { value: value, text: label });
    if (selected) { o.selected = true; }
    return o;
  }

  // input builds one value input for field f; onValue receives the parsed value.
  function input(f, value, label, onValue, multiple) {
    var id = 'rb-' + (++seq);
    var e;
    if (f.type === 'enum') {
      e = el('select', { id: id, 'aria-label': label });
      if (multiple) {
        e.multiple = true;
        e.size = Math.min(f.values.length, 4);
      }
      f.values.forEach(function (v) {
        e.appendChild(option(v, v, multiple ? (value || []).indexOf(v) >= 0 : v === value));
      });
      e.addEventListener('change', function () {
        if (multiple) {
          onValue(Array.prototype.filter.call(e.options, function (o) { return o.selected; })
            .map(function (o) { return o.value; }));
        } else {
          onValue(e.value);
        }
      });
      return e;
    }
    var type = { integer: 'number', number: 'number', time: 'date' }[f.type] || 'text';
    if (multiple) { type = 'text'; }
    e = el('input', { id: id, type: type, 'aria-label': label });
    if (f.type === 'integer' && !multiple) { e.step = '1'; }
    if (f.type === 'number' && !multiple) { e.step = 'any'; }
    if (multiple) {
      e.placeholder = 'comma, separated';
      e.value = (value || []).join(', ');
    } else {
      e.value = valueText(value);
    }
    var suggestions = cfg.suggest && cfg.suggest[f.name];
    if (suggestions && suggestions.length) {
      var listID = 'rb-list-' + f.name;
      if (!document.getElementById(listID)) {
        var dl = el('datalist', { id: listID });
        suggestions.forEach(function (s) { dl.appendChild(el('option', { value: s })); });
        root.appendChild(dl);
      }
      e.setAttribute('list', listID);
    }
    var emit = function () {
      if (multiple) {
        onValue(e.value.split(',').map(function (s) { return parseValue(f, s); })
          .filter(function (v) { return v !== null; }));
      } else {
        onValue(parseValue(f, e.value));
      }
    };
    e.addEventListener('input', emit);
    if (cfg.pickers && cfg.pickers.indexOf(f.name) >= 0 && cfg.catalogue) {
      return picker(f, e, multiple, emit);
    }
    return e;
  }

  // ---- catalogue pickers -------------------------------------------------------------------

  // picker turns the text input e of a bought_* rule into a combobox that searches the catalogue
  // as one types (GET cfg.catalogue?field=&query=, debounced): skus by sku, name, category or
  // brand, and the distinct categories or brands. Picking a choice (click, or arrows and Enter)
  // puts its value in the input, for "is one of" in place of the term being typed, and the
  // rule changes as if it had been typed. The input still takes any text: a sku not in the
  // catalogue counts too.
  function picker(f, e, multiple, emit) {
    var box = el('span', { class: 'rb-picker' });
    var listID = e.id + '-options';
    var list = el('ul', { id: listID, role: 'listbox', class: 'rb-options', 'aria-label': 'Catalogue matches' });
    list.hidden = true;
    e.setAttribute('role', 'combobox');
    e.setAttribute('aria-autocomplete', 'list');
    e.setAttribute('aria-expanded', 'false');
    e.setAttribute('aria-controls', listID);
    e.setAttribute('autocomplete', 'off');
    e.placeholder = multiple ? 'type to search, comma between values' : 'type to search the catalogue';
    box.appendChild(e);
    box.appendChild(list);
    var wait = null, asked = 0, active = -1;

    // term is what is being typed: the whole value, or its last comma-separated part.
    function term() {
      return multiple ? e.value.slice(e.value.lastIndexOf(',') + 1).trim() : e.value.trim();
    }
    function close() {
      list.hidden = true;
      list.textContent = '';
      active = -1;
      e.setAttribute('aria-expanded', 'false');
      e.removeAttribute('aria-activedescendant');
    }
    function pick(value) {
      if (multiple) {
        var done = e.value.slice(0, e.value.lastIndexOf(',') + 1);
        e.value = (done ? done.trim() + ' ' : '') + value + ', ';
      } else {
        e.value = value;
      }
      close();
      emit();
      e.focus();
    }
    function mark(i) {
      var items = list.querySelectorAll('[role=option]');
      if (!items.length) { return; }
      active = (i + items.length) % items.length;
      Array.prototype.forEach.call(items, function (li, j) { li.setAttribute('aria-selected', j === active ? 'true' : 'false'); });
      e.setAttribute('aria-activedescendant', items[active].id);
    }
    function search() {
      var id = ++asked;
      fetch(cfg.catalogue + '?field=' + encodeURIComponent(f.name) + '&query=' + encodeURIComponent(term()), {
        credentials: 'same-origin', headers: { Accept: 'application/json' }
      }).then(function (res) { return res.ok ? res.json() : { options: [] }; }).then(function (body) {
        if (id !== asked || document.activeElement !== e) { return; }
        // A choice marked with the arrows stays marked when a later answer still lists it.
        var items = list.querySelectorAll('[role=option]');
        var was = active >= 0 && items[active] ? items[active].getAttribute('data-value') : null;
        close();
        (body.options || []).forEach(function (o, i) {
          var li = el('li', { id: listID + '-' + i, role: 'option', 'aria-selected': 'false', 'data-value': o.value, text: o.label });
          // mousedown, not click: it comes before the input's blur closes the list.
          li.addEventListener('mousedown', function (ev) { ev.preventDefault(); pick(o.value); });
          list.appendChild(li);
        });
        if (!list.children.length) {
          list.appendChild(el('li', { class: 'rb-no-options', text: 'Nothing in the catalogue matches.' }));
        }
        list.hidden = false;
        e.setAttribute('aria-expanded', 'true');
        (body.options || []).forEach(function (o, i) { if (o.value === was) { mark(i); } });
      }).catch(function () { /* the input still takes the text as typed */ });
    }
    e.addEventListener('input', function () {
      clearTimeout(wait);
      wait = setTimeout(search, 200);
    });
    e.addEventListener('focus', function () {
      clearTimeout(wait);
      wait = setTimeout(search, 200);
    });
    e.addEventListener('blur', function () { clearTimeout(wait); close(); });
    e.addEventListener('keydown', function (ev) {
      if (list.hidden) { return; }
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        mark(active + (ev.key === 'ArrowDown' ? 1 : -1));
      } else if (ev.key === 'Enter') {
        ev.preventDefault(); // with the list open, Enter picks rather than submitting the form
        if (active >= 0) { pick(list.querySelectorAll('[role=option]')[active].getAttribute('data-value')); }
      } else if (ev.key === 'Escape') {
        close();
      }
    });
    return box;
  }

  function renderRule(rule, parent, depth) {
    var li = el('li', { class: 'rb-rule' });
    var f = fields[rule.field];
    var fieldSel = el('select', { 'aria-label': 'Field', class: 'rb-field' });
    if (!f) { fieldSel.appendChild(option(rule.field, rule.field + ' (unknown)', true)); }
    cfg.fields.forEach(function (x) { fieldSel.appendChild(option(x.name, x.name.replace(/_/g, ' '), x.name === rule.field)); });
    fieldSel.title = f ? f.doc : '';
    fieldSel.addEventListener('change', function () {
      var nf = fields[fieldSel.value];
      rule.field = nf.name;
      if (nf.ops.indexOf(rule.op) < 0) { rule.op = nf.ops[0]; }
      rule.value = defaultValue(nf, rule.op);
      changed(true, fieldSel);
    });
    li.appendChild(fieldSel);

    var ops = f ? f.ops : [rule.op];
    var opSel = el('select', { 'aria-label': 'Operator', class: 'rb-op' });
    ops.forEach(function (o) { opSel.appendChild(option(o, opLabels[o] || o, o === rule.op)); });
    opSel.addEventListener('change', function () {
      var old = rule.op;
      rule.op = opSel.value;
      var shape = function (op) { return op === 'between' ? 2 : (op === 'in' || op === 'not_in') ? 1 : (op === 'is_null' || op === 'is_not_null') ? 3 : 0; };
      if (shape(old) !== shape(rule.op)) { rule.value = defaultValue(f, rule.op); }
      changed(true, opSel);
    });
    li.appendChild(opSel);

    if (f) {
      var set = function (v) { rule.value = v; changed(false); };
      if (rule.op === 'between') {
        var pair = Array.isArray(rule.value) ? rule.value : [null, null];
        rule.value = pair;
        li.appendChild(input(f, pair[0], 'From', function (v) { pair[0] = v; changed(false); }));
        li.appendChild(el('span', { class: 'rb-and', text: 'and' }));
        li.appendChild(input(f, pair[1], 'To', function (v) { pair[1] = v; changed(false); }));
      } else if (rule.op === 'in' || rule.op === 'not_in') {
        li.appendChild(input(f, Array.isArray(rule.value) ? rule.value : [], 'Values', set, true));
      } else if (rule.op !== 'is_null' && rule.op !== 'is_not_null') {
        li.appendChild(input(f, rule.value, 'Value', set));
      }
    }

    var remove = el('button', { type: 'button', class: 'rb-remove', 'aria-label': 'Remove this rule', text: '✕' });
    remove.addEventListener('click', function () {
      parent.children.splice(parent.children.indexOf(rule), 1);
      changed(true);
    });
    li.appendChild(remove);
    return li;
  }

  function renderGroup(group, parent, depth) {
    var box = el('div', { class: 'rb-group', role: 'group' });
    var head = el('div', { class: 'rb-group-head' });
    var kindID = 'rb-' + (++seq);
    var kindSel = el('select', { id: kindID });
    ['all', 'any', 'none'].forEach(function (k) { kindSel.appendChild(option(k, kindLabels[k], k === group.kind)); });
    kindSel.addEventListener('change', function () { group.kind = kindSel.value; changed(true, kindSel); });
    head.appendChild(el('label', { for: kindID, text: depth === 1 ? 'Members who match' : 'Match' }));
    head.appendChild(kindSel);
    head.appendChild(el('span', { text: 'of these rules:' }));
    box.setAttribute('aria-label', (depth === 1 ? 'Rules' : 'Group') + ': match ' + group.kind);
    if (parent) {
      var rm = el('button', { type: 'button', class: 'rb-remove', 'aria-label': 'Remove this group', text: '✕' });
      rm.addEventListener('click', function () {
        parent.children.splice(parent.children.indexOf(group), 1);
        changed(true);
      });
      head.appendChild(rm);
    }
    box.appendChild(head);

    var list = el('ul', { class: 'rb-children' });
    group.children.forEach(function (c) {
      if (c.children) {
        var li = el('li', { class: 'rb-nested' });
        li.appendChild(renderGroup(c, group, depth + 1));
        list.appendChild(li);
      } else {
        list.appendChild(renderRule(c, group, depth));
      }
    });
    if (!group.children.length) {
      list.appendChild(el('li', { class: 'rb-hint', text: 'No rules yet: add one.' }));
    }
    box.appendChild(list);

    var actions = el('div', { class: 'rb-actions' });
    var full = countRules(model) >= cfg.maxRules;
    var addRule = el('button', { type: 'button', class: 'rb-add-rule', text: '+ Add rule' });
    addRule.disabled = full;
    addRule.addEventListener('click', function () {
      var f = fields.home_store || cfg.fields[0];
      group.children.push({ field: f.name, op: f.ops[0], value: defaultValue(f, f.ops[0]) });
      changed(true, null, true);
    });
    actions.appendChild(addRule);
    if (depth < maxGroupDepth) {
      var addGroup = el('button', { type: 'button', class: 'rb-add-group secondary', text: '+ Add group' });
      addGroup.disabled = full;
      addGroup.addEventListener('click', function () {
        var f = cfg.fields[0];
        group.children.push({ kind: 'any', children: [{ field: f.name, op: f.ops[0], value: defaultValue(f, f.ops[0]) }] });
        changed(true);
      });
      actions.appendChild(addGroup);
    }
    box.appendChild(actions);
    return box;
  }

  var focusAfter = null;

  function render() {
    seq = 0;
    root.textContent = '';
    root.appendChild(renderGroup(model, null, 1));
    if (focusAfter) {
      var target = focusAfter === 'last-rule'
        ? Array.prototype.slice.call(root.querySelectorAll('.rb-rule .rb-field')).pop()
        : null;
      if (target) { target.focus(); }
      focusAfter = null;
    }
  }

  // changed writes the model into the textarea and asks for a new count; structural changes
  // redraw the builder (keeping focus on the control that was used, by its position).
  function changed(redraw, control, focusNewRule) {
    textarea.value = JSON.stringify(toJSON(model), null, 2);
    if (redraw) {
      var index = -1;
      if (control) {
        var all = root.querySelectorAll('select, input, button');
        index = Array.prototype.indexOf.call(all, control);
      }
      if (focusNewRule) { focusAfter = 'last-rule'; }
      render();
      if (index >= 0) {
        var now = root.querySelectorAll('select, input, button');
        if (now[index]) { now[index].focus(); }
      }
    }
    schedulePreview();
  }

  // ---- the live count -----------------------------------------------------------------------

  var countEl = document.getElementById('segment-count');
  var mailableEl = document.getElementById('segment-mailable');
  var previewBox = document.getElementById('segment-preview');
  var errorEl = document.getElementById('segment-preview-error');
  var timer = null;
  var latest = 0;

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  function showError(text) {
    if (errorEl) { errorEl.textContent = text; }
    if (previewBox) { previewBox.classList.add('stale'); }
  }

  function preview() {
    var id = ++latest;
    var rules = textarea.value;
    fetch(cfg.preview + '?rules=' + encodeURIComponent(rules), {
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'X-CSRF-Token': csrf }
    }).then(function (res) {
      return res.json().then(function (body) { return { ok: res.ok, body: body }; });
    }).then(function (r) {
      if (id !== latest) { return; } // a newer request is on its way
      if (!r.ok) {
        var e = r.body && r.body.error;
        var why = e ? e.message : 'The rules could not be counted.';
        if (e && e.fields) {
          why += ': ' + Object.keys(e.fields).sort().map(function (k) { return k + ' ' + e.fields[k]; }).join('; ');
        }
        showError(why);
        return;
      }
      showCounts(r.body);
    }).catch(function () {
      if (id === latest) { showError('The count could not be fetched; check the connection.'); }
    });
  }

  function showCounts(body) {
    if (errorEl) { errorEl.textContent = ''; }
    previewBox.classList.remove('stale');
    previewBox.textContent = '';
    var p = el('p', { class: 'seg-counts' });
    p.appendChild(el('span', { id: 'segment-count', class: 'count', text: body.members.toLocaleString('en') }));
    p.appendChild(document.createTextNode(' members, '));
    p.appendChild(el('span', { id: 'segment-mailable', class: 'count', text: body.mailable.toLocaleString('en') }));
    p.appendChild(document.createTextNode(' mailable.'));
    previewBox.appendChild(p);
    if (body.sample && body.sample.length) {
      previewBox.appendChild(el('p', { text: 'For example:' }));
      var ul = el('ul', { class: 'seg-sample', id: 'segment-sample' });
      body.sample.forEach(function (m) {
        var li = el('li', { text: m.name + ' ' });
        li.appendChild(el('span', { class: 'seg-card-no', text: m.card }));
        ul.appendChild(li);
      });
      previewBox.appendChild(ul);
    }
    countEl = document.getElementById('segment-count');
    mailableEl = document.getElementById('segment-mailable');
  }

  // ---- start ---------------------------------------------------------------------------------

  // loadFromTextarea reads the textarea into the builder; JSON it cannot show leaves the builder
  // hidden with a note, and the textarea remains the editor.
  var note = el('p', { class: 'rb-note hint', role: 'status' });
  root.parentNode.insertBefore(note, root);

  function loadFromTextarea() {
    var parsed = null;
    try { parsed = JSON.parse(textarea.value); } catch (e) { parsed = undefined; }
    var m = parsed === undefined ? null : fromJSON(parsed);
    if (!m) {
      root.hidden = true;
      note.textContent = parsed === undefined
        ? 'The JSON below is not valid yet; the visual builder returns when it is.'
        : 'These rules use a shape the visual builder cannot show; edit them as JSON below.';
      return false;
    }
    model = m;
    note.textContent = '';
    root.hidden = false;
    render();
    return true;
  }

  textarea.addEventListener('input', schedulePreview);
  textarea.addEventListener('change', loadFromTextarea);
  document.documentElement.classList.add('segment-builder-js');
  loadFromTextarea();
  schedulePreview();
}());
