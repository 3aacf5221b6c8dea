/* IrEne-viz page: explore a model's energy tree (served by `irene serve`, or embedded by `irene report`). */
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  /** Create an element; `props` sets attributes (class, text, aria-*, data-*, on*: listeners). */
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  const fmtNum = (v, digits) =>
    v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

  /** Joules → "12.34 mJ" (more decimals for small values). */
  function fmtMJ(joules) {
    if (joules === null || joules === undefined) return '—';
    const mj = joules * 1000;
    const a = Math.abs(mj);
    if (a === 0) return '0 mJ';
    return `${fmtNum(mj, a >= 100 ? 1 : a >= 1 ? 2 : a >= 0.01 ? 3 : 4)} mJ`;
  }

  function fmtPct(pct) {
    if (pct === null || pct === undefined || !Number.isFinite(pct)) return '—';
    return `${fmtNum(pct, Math.abs(pct) < 10 ? 2 : 1)} %`;
  }

  const signedPct = (pct) => (pct > 0 ? '+' : '') + fmtPct(pct);

  const isNum = (v) => v !== null && v !== undefined;
  /** A node's 90 % interval as "1.23–4.56 mJ", or null when it has none. */
  function fmtInterval(node) {
    if (!isNum(node.predicted_low) || !isNum(node.predicted_high)) return null;
    return `${fmtMJ(node.predicted_low).replace(/ mJ$/, '')}–${fmtMJ(node.predicted_high)}`;
  }
  const EXTRAPOLATED_NOTE = 'predicted outside the training data (this node or a part of it): less certain';
  const extrapolatedMark = () => h('span', { class: 'extrap', title: EXTRAPOLATED_NOTE, text: 'extrapolated' });

  /** How each feature is shown in the tooltip: label, scale, unit, decimals. */
  const FEATURES = {
    flops: ['FLOPs', 1, 'MFLOPs', 1],
    mem_bytes: ['Memory traffic', 1, 'MiB', 2],
    num_parameters: ['Parameters', 1, '', 0],
    cpu: ['CPU use', 1, '%', 1],
    mem: ['Host memory', 1, '%', 1],
    gpu: ['GPU use', 1, '%', 1],
    gpu_mem: ['GPU memory', 1, '%', 1],
    gpu_clk: ['SM clock', 1, 'MHz', 0],
    gpu_mem_clk: ['Memory clock', 1, 'MHz', 0],
    times_mean: ['Latency', 1000, 'ms', 3],
    gpu_energy_mean: ['GPU-driver energy', 1000, 'mJ', 3],
  };
  const HIDDEN_FEATURES = new Set(['batch_size', 'seq_len']);
  const OWN_OPS_NOTE = 'Work this module does beyond its children (activations, head splits, masks, residual adds…)';

  /** Colour for a share of the model's energy (0..1): pale yellow → deep red on a square-root scale. */
  function heat(share) {
    const t = Math.min(1, Math.sqrt(Math.max(0, share) / 0.5));
    return `hsl(${Math.round(48 - 46 * t)} ${Math.round(92 - 12 * t)}% ${Math.round(86 - 42 * t)}%)`;
  }

  // ---------------------------------------------------------------- the data

  const energyOf = (node) => node.predicted_energy ?? node.ground_truth_energy ?? null;

  /** Index a tree view: parents, depth and shares of every node, plus what the view carries. */
  function prepare(view) {
    const info = new Map();
    const total = energyOf(view.root);
    let hasPred = false;
    let hasMeas = false;
    const visit = (node, parent, depth) => {
      const e = energyOf(node);
      const pe = parent ? energyOf(parent) : null;
      hasPred ||= node.predicted_energy !== null && node.predicted_energy !== undefined;
      hasMeas ||= node.ground_truth_energy !== null && node.ground_truth_energy !== undefined;
      info.set(node.id, {
        node,
        parent,
        depth,
        share: total && e !== null ? e / total : null,
        ofParent: pe && e !== null ? e / pe : parent ? null : 1,
      });
      const kids = [...node.children].sort((a, b) => (energyOf(b) ?? -1) - (energyOf(a) ?? -1));
      node.sorted = kids;
      for (const child of kids) visit(child, node, depth + 1);
    };
    visit(view.root, null, 1);
    return { view, info, total, hasPred, hasMeas, count: info.size };
  }

  const isInnermost = (node) => node.level === 'module' && !node.children.some((c) => c.level === 'module');

  /** Energy per node type as % of the model (the paper's Tables 10 and 12). Groupings: 'innermost'
   *  modules (no module inside: attention, feed-forward… — they do not overlap), every 'module' type
   *  (a module nested in one of its own type counts once), and primitives ('ml', with the OwnOps). */
  function typeShares(prep, grouping) {
    const sums = new Map();
    if (!prep.total) return [];
    const level = grouping === 'ml' ? 'ml' : 'module';
    const visit = (node, open) => {
      if (node.synthetic && level !== 'ml') return;
      const counted = grouping === 'innermost'
        ? isInnermost(node)
        : node.level === level && !open.has(node.type) && (level !== 'ml' || !node.children.length);
      if (counted) {
        const e = energyOf(node);
        if (e !== null) {
          const key = node.synthetic ? 'OwnOps' : node.type;
          const row = sums.get(key) ?? { type: key, count: 0, energy: 0 };
          row.count += 1;
          row.energy += e;
          sums.set(key, row);
        }
      }
      const inner = node.level === level ? new Set([...open, node.type]) : open;
      for (const child of node.children) visit(child, inner);
    };
    visit(prep.view.root, new Set());
    return [...sums.values()]
      .map((r) => ({ ...r, share: (100 * r.energy) / prep.total }))
      .sort((a, b) => b.energy - a.energy || a.type.localeCompare(b.type));
  }

  /** Mean of 100·|pred−gt|/gt over the real nodes of each level that have both. */
  function levelErrors(prep) {
    const acc = { ml: [], module: [], model: [] };
    for (const { node } of prep.info.values()) {
      const p = node.predicted_energy;
      const g = node.ground_truth_energy;
      if (!node.synthetic && p !== null && p !== undefined && g) acc[node.level].push((100 * Math.abs(p - g)) / g);
    }
    const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    return { ml: mean(acc.ml), module: mean(acc.module), model: mean(acc.model) };
  }

  const nodeLabel = (node, modelName) => {
    if (node.synthetic) return 'own ops';
    if (!node.scope) return modelName ?? node.type;
    const parts = node.scope.split('.');
    const last = parts[parts.length - 1];
    return /^\d+$/.test(last) && parts.length > 1 ? `${parts[parts.length - 2]}.${last}` : last;
  };

  // ------------------------------- IrEne JSONL (files from `irene run`), parsed here: schema v2 and v1

  const FILE_NODE_KEYS = new Set([
    'id', 'scope', 'parent_name', 'level', 'instance_type', 'type', 'ground_truth_energy', 'predicted_energy',
    'child_nodes_obj', 'child_nodes', 'synthetic', 'level_name',
  ]);

  function energyValue(value, what, nonNegative = true) {
    if (value === null || value === undefined) return null;
    if (typeof value !== 'number' || !Number.isFinite(value) || (nonNegative && value < 0)) {
      throw new Error(`${what} must be a finite number${nonNegative ? ' ≥ 0' : ''}`);
    }
    return value;
  }

  /** A node of schema v2: the record model's own fields (see docs/data-format.md). */
  function fromV2Node(d, path, seen) {
    if (!d || typeof d !== 'object' || Array.isArray(d)) throw new Error(`${path}: a node must be an object`);
    for (const key of ['id', 'scope', 'type', 'level']) {
      if (!(key in d)) throw new Error(`${path}: missing field '${key}'`);
    }
    const id = String(d.id);
    if (seen.has(id)) throw new Error(`${path}: duplicate node id '${id}'`);
    seen.add(id);
    const kids = d.children ?? [];
    if (!Array.isArray(kids)) throw new Error(`${path}: 'children' must be a list`);
    const features = {};
    for (const [key, value] of Object.entries(d.features ?? {})) {
      if (typeof value === 'number' && Number.isFinite(value)) features[key] = value;
    }
    return {
      id,
      scope: String(d.scope),
      type: String(d.type),
      level: String(d.level),
      features,
      ground_truth_energy: energyValue(d.ground_truth_energy, `${path} (${id}): ground_truth_energy`),
      predicted_energy: energyValue(d.predicted_energy, `${path} (${id}): predicted_energy`, false),
      predicted_low: energyValue(d.predicted_low, `${path} (${id}): predicted_low`, false),
      predicted_high: energyValue(d.predicted_high, `${path} (${id}): predicted_high`, false),
      extrapolated: d.extrapolated === true,
      synthetic: Boolean(d.synthetic),
      children: kids.map((c, i) => fromV2Node(c, `${path}.children.${i}`, seen)),
    };
  }

  function fromFileNode(d, path, seen) {
    if (!d || typeof d !== 'object' || Array.isArray(d)) throw new Error(`${path}: a node must be an object`);
    for (const key of ['id', 'scope', 'instance_type', 'type']) {
      if (!(key in d)) throw new Error(`${path}: missing field '${key}'`);
    }
    const id = String(d.id);
    if (seen.has(id)) throw new Error(`${path}: duplicate node id '${id}'`);
    seen.add(id);
    const features = {};
    for (const [key, value] of Object.entries(d)) {
      if (!FILE_NODE_KEYS.has(key) && typeof value === 'number' && Number.isFinite(value)) features[key] = value;
    }
    const scope = String(d.scope);
    const kids = d.child_nodes_obj ?? [];
    if (!Array.isArray(kids)) throw new Error(`${path}: 'child_nodes_obj' must be a list`);
    return {
      id,
      scope: scope === 'root' ? '' : scope.startsWith('root.') ? scope.slice(5) : scope,
      type: String(d.instance_type),
      level: d.type === 'ml-np' ? 'ml' : String(d.type),
      features,
      ground_truth_energy: energyValue(d.ground_truth_energy, `${path} (${id}): ground_truth_energy`),
      predicted_energy: energyValue(d.predicted_energy, `${path} (${id}): predicted_energy`, false),
      synthetic: Boolean(d.synthetic),
      children: kids.map((c, i) => fromFileNode(c, `${path}.${i}`, seen)),
    };
  }

  /** Records of one JSONL text; a bad line becomes "name:line: what is wrong" and is skipped. */
  function parseJsonl(text, name) {
    const records = [];
    const errors = [];
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const d = JSON.parse(line);
        const version = d.schema_version ?? 1;
        if (version !== 1 && version !== 2) throw new Error(`schema_version ${version} is not supported (this page reads 1 and 2)`);
        const tree = version === 1 ? 'frontend_tree' : 'root';
        for (const key of ['model_name', 'batch_size', 'seq_len', tree]) {
          if (!(key in d)) throw new Error(`missing field '${key}'`);
        }
        const meta = d.meta && typeof d.meta === 'object' ? d.meta : {};
        records.push({
          model_name: String(d.model_name),
          batch_size: Number(d.batch_size),
          seq_len: Number(d.seq_len),
          device: d.device ?? null,
          meta,
          notices: Array.isArray(d.notices) ? d.notices.filter((n) => n && typeof n.message === 'string') : [],
          root: version === 1 ? fromFileNode(d.frontend_tree, tree, new Set()) : fromV2Node(d.root, tree, new Set()),
          source: 'file',
          dataset: name,
          predictor: meta.prediction ? `predictor (features=${meta.prediction.features ?? '?'})` : null,
          hardware: meta.prediction?.hardware ?? null,
        });
      } catch (err) {
        errors.push(`${name}:${i + 1}: ${err instanceof SyntaxError ? 'invalid JSON' : err.message}`);
      }
    });
    return { records, errors };
  }

  // ---------------------------------------------------------------- where views come from

  const embedded = $('#irene-data');
  const REPORT = embedded ? JSON.parse(embedded.textContent) : null;

  class ApiError extends Error {}

  async function api(path, params) {
    const url = new URL(path, window.location.href);
    for (const [k, v] of Object.entries(params ?? {})) if (v !== null && v !== undefined && v !== '') url.searchParams.set(k, v);
    let response;
    try {
      response = await fetch(url, { headers: { Accept: 'application/json' } });
    } catch (err) {
      throw new ApiError(`the server did not answer (${err.message})`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(body?.detail ?? `HTTP ${response.status}`);
    return body;
  }

  // ---------------------------------------------------------------- tooltip

  const tooltip = $('#tooltip');
  let tooltipFor = null;

  function showTooltip(pane, id, anchor) {
    const rec = pane.prep.info.get(id);
    if (!rec) return;
    const { node } = rec;
    const rows = [];
    const add = (label, value, cls) => rows.push(h('dt', { text: label }), h('dd', { text: value, class: cls }));
    if (node.predicted_energy !== null && node.predicted_energy !== undefined) add('Energy (predicted)', fmtMJ(node.predicted_energy), 'strong');
    const interval = fmtInterval(node);
    if (interval) add('90 % interval', interval);
    if (node.extrapolated) add('Extrapolated', `yes: ${EXTRAPOLATED_NOTE}`, 'extrap-text');
    if (node.ground_truth_energy !== null && node.ground_truth_energy !== undefined) {
      add('Energy (measured)', fmtMJ(node.ground_truth_energy), node.predicted_energy == null ? 'strong' : null);
      if (node.predicted_energy !== null && node.predicted_energy !== undefined && node.ground_truth_energy > 0) {
        add('Prediction error', signedPct((100 * (node.predicted_energy - node.ground_truth_energy)) / node.ground_truth_energy));
      }
    }
    add('Share of parent', fmtPct(rec.ofParent === null ? null : 100 * rec.ofParent));
    add('Share of model', fmtPct(rec.share === null ? null : 100 * rec.share));
    for (const [key, [label, scale, unit, digits]] of Object.entries(FEATURES)) {
      if (key in node.features) add(label, `${fmtNum(node.features[key] * scale, digits)}${unit ? ` ${unit}` : ''}`);
    }
    for (const [key, value] of Object.entries(node.features)) {
      if (!(key in FEATURES) && !HIDDEN_FEATURES.has(key)) add(key, fmtNum(value, 3));
    }
    tooltip.replaceChildren(
      h('div', { class: 'tt-head' },
        h('strong', { text: node.synthetic ? 'Own ops' : node.type }),
        h('span', { class: `badge level-${node.level}`, text: node.synthetic ? 'own ops' : node.level })),
      h('p', { class: 'tt-scope', text: node.synthetic ? OWN_OPS_NOTE : node.scope || '(the whole model)' }),
      h('dl', {}, rows),
    );
    tooltip.hidden = false;
    tooltipFor = anchor;
    // Beside the row when there is room (the tree stays readable), else below or above it.
    const r = anchor.getBoundingClientRect();
    const tw = tooltip.offsetWidth;
    const th = tooltip.offsetHeight;
    let left;
    let top;
    if (r.right + tw + 12 < window.innerWidth) {
      left = r.right + 12;
      top = Math.min(Math.max(8, r.top - 8), window.innerHeight - th - 8);
    } else {
      left = Math.max(8, Math.min(r.left + 24, window.innerWidth - tw - 8));
      top = r.bottom + 6;
      if (top + th > window.innerHeight - 8) top = Math.max(8, r.top - th - 6);
    }
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${top}px`;
  }

  function hideTooltip(anchor) {
    if (!anchor || anchor === tooltipFor) {
      tooltip.hidden = true;
      tooltipFor = null;
    }
  }
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hideTooltip(); });
  window.addEventListener('scroll', () => hideTooltip(), { passive: true, capture: true });

  // ---------------------------------------------------------------- one pane: tree, chart, table

  const TABLE_COLUMNS = [
    { key: 'name', label: 'Node', num: false },
    { key: 'level', label: 'Level', num: false },
    { key: 'energy', label: 'Energy', num: true },
    { key: 'interval', label: '90 % interval', num: true },
    { key: 'share', label: '% of model', num: true },
    { key: 'ofParent', label: '% of parent', num: true },
    { key: 'measured', label: 'Measured', num: true },
    { key: 'error', label: 'Error', num: true },
  ];
  const TABLE_MAX_ROWS = 500;

  class Pane {
    constructor(index) {
      this.index = index;
      this.root = $('#pane-template').content.firstElementChild.cloneNode(true);
      this.root.id = `pane-${index}`;
      $('.pane-letter', this.root).textContent = 'AB'[index];
      this.tree = $('.tree', this.root);
      this.items = new Map();
      this.chartLevel = 'innermost';
      this.sort = { key: 'energy', dir: -1 };
      this.filter = '';
      this.prep = null;
      this.wire();
    }

    wire() {
      const r = this.root;
      $('[data-act=expand]', r).addEventListener('click', () => this.expandAll());
      $('[data-act=collapse]', r).addEventListener('click', () => this.collapseAll());
      for (const b of $$('.seg button', r)) {
        b.addEventListener('click', () => {
          this.chartLevel = b.dataset.level;
          for (const o of $$('.seg button', r)) o.setAttribute('aria-pressed', String(o === b));
          this.renderChart();
        });
      }
      $('.filter', r).addEventListener('input', (e) => { this.filter = e.target.value.trim().toLowerCase(); this.renderTable(); });
      $('tbody', r).addEventListener('keydown', (e) => this.onTableKey(e));
      this.tree.addEventListener('keydown', (e) => this.onTreeKey(e));
      this.tree.addEventListener('click', (e) => {
        const li = e.target.closest('[role=treeitem]');
        if (!li) return;
        this.focusItem(li);
        if (e.target.closest('.row')) this.toggle(li);
      });
      this.tree.addEventListener('focusin', (e) => {
        const li = e.target.closest('[role=treeitem]');
        if (li) showTooltip(this, li.dataset.id, $('.row', li));
      });
      this.tree.addEventListener('focusout', (e) => { const li = e.target.closest('[role=treeitem]'); if (li) hideTooltip($('.row', li)); });
      this.tree.addEventListener('mouseover', (e) => {
        const row = e.target.closest('.row');
        if (row) showTooltip(this, row.parentElement.dataset.id, row);
      });
      this.tree.addEventListener('mouseout', (e) => {
        const row = e.target.closest('.row');
        if (row && !row.contains(e.relatedTarget)) hideTooltip(row);
      });
    }

    setBusy(text) {
      this.root.setAttribute('aria-busy', 'true');
      const note = $('.pane-note', this.root);
      note.hidden = false;
      note.className = 'pane-note busy';
      note.textContent = text;
    }

    setError(text) {
      this.root.setAttribute('aria-busy', 'false');
      const note = $('.pane-note', this.root);
      note.hidden = false;
      note.className = 'pane-note error';
      note.setAttribute('role', 'alert');
      note.textContent = text;
    }

    show(view) {
      this.prep = prepare(view);
      this.root.setAttribute('aria-busy', 'false');
      const note = $('.pane-note', this.root);
      const warnings = [...(view.meta?.warnings ?? []), ...(view.notices ?? []).map((n) => (n.source ? `${n.source}: ${n.message}` : n.message))];
      note.hidden = !warnings.length;
      note.className = 'pane-note warn';
      note.removeAttribute('role');
      note.textContent = warnings.length ? `Notices: ${warnings.join('; ')}` : '';
      this.renderHead();
      this.renderTree();
      this.renderChart();
      this.renderTable();
    }

    renderHead() {
      const { view, hasPred, hasMeas } = this.prep;
      const r = this.root;
      $('.pane-title', r).textContent = view.model_name;
      const where = view.dataset ? ` · from ${view.dataset}` : view.source === 'preset' ? ' · traced by name' : view.source === 'local' ? ' · local model' : '';
      const by = hasPred
        ? ` · predicted by ${view.predictor ?? 'a predictor'}${view.hardware ? ` for ${view.hardware}` : ''}`
        : '';
      $('.pane-sub', r).textContent = `batch ${view.batch_size} × sequence ${view.seq_len}${where}${by}`;
      const items = [];
      const add = (label, value, cls) => items.push(h('div', { class: cls }, h('dt', { text: label }), h('dd', { text: value })));
      if (hasPred) add('Predicted', fmtMJ(view.root.predicted_energy), 'total-main');
      if (hasMeas) add('Measured', fmtMJ(view.root.ground_truth_energy), hasPred ? null : 'total-main');
      if (hasPred && hasMeas) {
        const err = levelErrors(this.prep);
        add('Error ml · module · model', [err.ml, err.module, err.model].map((x) => (x === null ? '—' : fmtNum(x, 1))).join(' · ') + ' %');
      }
      add('Nodes', String(this.prep.count));
      $('.totals', r).replaceChildren(...items);
      this.tree.setAttribute('aria-label', `Energy tree of ${view.model_name}`);
      const ramp = $('.ramp', r);
      ramp.style.background = `linear-gradient(to right, ${[0, 0.005, 0.02, 0.08, 0.2, 0.5].map((s) => heat(s)).join(', ')})`;
      $('.ramp-labels', r).replaceChildren(...['0', '1 %', '5 %', '20 %', '50 %+'].map((t) => h('span', { text: t })));
    }

    // -- tree

    renderTree() {
      this.items.clear();
      const rootLi = this.makeItem(this.prep.view.root);
      this.tree.replaceChildren(rootLi);
      this.expand(rootLi);
      const top = $$(':scope > ul > li', rootLi);
      if (top.length <= 4) for (const child of top) this.expand(child); // open a thin top level one step more
      rootLi.tabIndex = 0;
    }

    makeItem(node) {
      const rec = this.prep.info.get(node.id);
      const e = energyOf(node);
      const hasKids = node.children.length > 0;
      const share = rec.share ?? 0;
      const fill = h('span', { class: 'fill' });
      fill.style.width = `${Math.max(0.5, 100 * share)}%`;
      fill.style.background = heat(share);
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = heat(share);
      const measured = node.ground_truth_energy;
      const extra = [];
      if (measured !== null && measured !== undefined && node.predicted_energy !== null && node.predicted_energy !== undefined && measured > 0) {
        const err = (100 * (node.predicted_energy - measured)) / measured;
        extra.push(h('span', { class: `meas ${Math.abs(err) > 10 ? 'bad' : ''}`, title: 'measured energy and prediction error' },
          `meas ${fmtMJ(measured)} · ${signedPct(err)}`));
      }
      const interval = fmtInterval(node);
      if (interval) extra.push(h('span', { class: 'interval', title: '90 % interval of the prediction', text: `90 % ${interval}` }));
      if (node.extrapolated) extra.push(extrapolatedMark());
      // A functional op carries its calling module's scope: its type is its name.
      const isOp = !node.synthetic && rec.parent && rec.parent.scope === node.scope;
      const row = h('div', { class: `row${node.synthetic ? ' synthetic' : ''}` },
        h('span', { class: `caret${hasKids ? '' : ' leaf'}`, 'aria-hidden': 'true' }),
        swatch,
        h('span', { class: 'name' },
          h('span', { class: 'short', text: isOp ? node.type : nodeLabel(node, this.prep.view.model_name) }),
          node.synthetic || isOp ? null : h('span', { class: 'type', text: node.type })),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'energy', text: fmtMJ(e) }),
        h('span', { class: 'pct', text: fmtPct(rec.share === null ? null : 100 * rec.share) }),
        ...extra);
      const li = h('li', {
        role: 'treeitem',
        tabindex: '-1',
        'data-id': node.id,
        'aria-level': rec.depth,
        'aria-label': `${node.synthetic ? 'own ops' : `${node.type} ${node.scope}`}, ${fmtMJ(e)}, ${fmtPct(rec.share === null ? null : 100 * rec.share)} of model${interval ? `, 90 % interval ${interval}` : ''}${node.extrapolated ? ', extrapolated' : ''}`,
      }, row);
      if (hasKids) li.setAttribute('aria-expanded', 'false');
      this.items.set(node.id, li);
      return li;
    }

    expand(li) {
      if (li.getAttribute('aria-expanded') !== 'false') return;
      let group = $(':scope > ul', li);
      if (!group) {
        const node = this.prep.info.get(li.dataset.id).node;
        group = h('ul', { role: 'group' }, node.sorted.map((c) => this.makeItem(c)));
        li.append(group);
      }
      group.hidden = false;
      li.setAttribute('aria-expanded', 'true');
    }

    collapse(li) {
      if (li.getAttribute('aria-expanded') !== 'true') return;
      $(':scope > ul', li).hidden = true;
      li.setAttribute('aria-expanded', 'false');
    }

    toggle(li) {
      if (li.getAttribute('aria-expanded') === 'true') this.collapse(li);
      else this.expand(li);
    }

    expandAll() {
      const walk = (li) => { this.expand(li); for (const c of $$(':scope > ul > li', li)) walk(c); };
      walk(this.tree.firstElementChild);
    }

    collapseAll() {
      for (const li of $$('[aria-expanded=true]', this.tree)) this.collapse(li);
      this.expand(this.tree.firstElementChild);
      this.focusItem(this.tree.firstElementChild, false);
    }

    focusItem(li, focus = true) {
      for (const other of $$('[role=treeitem][tabindex="0"]', this.tree)) other.tabIndex = -1;
      li.tabIndex = 0;
      if (focus) li.focus();
    }

    /** Expand the ancestors of a node, then focus it and scroll it into view. */
    reveal(id) {
      const chain = [];
      for (let n = this.prep.info.get(id); n; n = n.parent ? this.prep.info.get(n.parent.id) : null) chain.unshift(n.node.id);
      for (const nid of chain.slice(0, -1)) this.expand(this.items.get(nid));
      const li = this.items.get(id);
      this.focusItem(li);
      li.scrollIntoView({ block: 'nearest' });
    }

    visibleItems() {
      return $$('[role=treeitem]', this.tree).filter((li) => li.offsetParent !== null);
    }

    onTreeKey(e) {
      const li = e.target.closest('[role=treeitem]');
      if (!li) return;
      const items = this.visibleItems();
      const i = items.indexOf(li);
      const expanded = li.getAttribute('aria-expanded');
      let target = null;
      switch (e.key) {
        case 'ArrowDown': target = items[i + 1]; break;
        case 'ArrowUp': target = items[i - 1]; break;
        case 'Home': target = items[0]; break;
        case 'End': target = items[items.length - 1]; break;
        case 'ArrowRight':
          if (expanded === 'false') this.expand(li);
          else if (expanded === 'true') target = $(':scope > ul > li', li);
          break;
        case 'ArrowLeft':
          if (expanded === 'true') this.collapse(li);
          else target = li.parentElement.closest('[role=treeitem]');
          break;
        case 'Enter':
        case ' ':
          if (expanded !== null) this.toggle(li);
          break;
        case '*':
          for (const sib of $$(':scope > li', li.parentElement)) this.expand(sib);
          break;
        default:
          return;
      }
      e.preventDefault();
      if (target) this.focusItem(target);
      else showTooltip(this, li.dataset.id, $('.row', li));
    }

    // -- bottleneck chart

    renderChart() {
      const r = this.root;
      const shares = typeShares(this.prep, this.chartLevel);
      const top = shares.slice(0, 12);
      const max = Math.max(...top.map((s) => s.share), 1);
      $('.bars', r).replaceChildren(...top.map((s) => {
        const fill = h('span', { class: 'fill' });
        fill.style.width = `${(100 * s.share) / max}%`;
        fill.style.background = heat(s.share / 100);
        return h('li', { title: `${s.type}: ${s.count} node(s), ${fmtMJ(s.energy)}` },
          h('span', { class: 'label' }, s.type === 'OwnOps' ? 'own ops' : s.type, h('small', { text: ` ×${s.count}` })),
          h('span', { class: 'track', 'aria-hidden': 'true' }, fill),
          h('span', { class: 'val', text: fmtPct(s.share) }));
      }));
      const basis = this.prep.hasPred ? 'predicted' : 'measured';
      const covered = shares.reduce((a, s) => a + s.share, 0);
      const notes = {
        innermost: `Share of the model's ${basis} energy per innermost module type (modules with no module inside); together they cover ${fmtPct(covered)}.`,
        module: `Share of the model's ${basis} energy per module type; nested types overlap (a type inside itself counts once).`,
        ml: `Share of the model's ${basis} energy per primitive type, with the modules' own ops${this.prep.hasPred ? '; these add up to 100 %' : ''}.`,
      };
      $('.chart-note', r).textContent = shares.length ? notes[this.chartLevel] : 'No energy in this tree.';
    }

    // -- sorted table

    tableRows() {
      const rows = [];
      for (const rec of this.prep.info.values()) {
        const { node } = rec;
        const p = node.predicted_energy;
        const g = node.ground_truth_energy;
        rows.push({
          id: node.id,
          node,
          name: node.synthetic ? `${rec.parent.scope || rec.parent.type} · own ops` : node.scope ? `${node.scope}:${node.type}` : node.type,
          level: node.synthetic ? 'own ops' : node.level,
          energy: energyOf(node),
          interval: fmtInterval(node),
          low: node.predicted_low ?? null,
          share: rec.share === null ? null : 100 * rec.share,
          ofParent: rec.ofParent === null ? null : 100 * rec.ofParent,
          measured: g ?? null,
          error: p !== null && p !== undefined && g ? (100 * (p - g)) / g : null,
        });
      }
      return rows;
    }

    renderTable() {
      const r = this.root;
      const head = $('thead tr', r);
      const showMeasured = this.prep.hasMeas && this.prep.hasPred;
      const hasInterval = [...this.prep.info.values()].some((rec) => fmtInterval(rec.node));
      const columns = TABLE_COLUMNS.filter((c) => (showMeasured || (c.key !== 'measured' && c.key !== 'error'))
        && (hasInterval || c.key !== 'interval'));
      head.replaceChildren(...columns.map((c) => {
        const active = this.sort.key === c.key;
        const label = c.key === 'energy' ? (this.prep.hasPred ? 'Predicted' : 'Measured') : c.label;
        return h('th', { scope: 'col', class: c.num ? 'num' : null, 'aria-sort': active ? (this.sort.dir < 0 ? 'descending' : 'ascending') : null },
          h('button', { type: 'button', onclick: () => this.sortBy(c.key) }, label, h('span', { class: 'sort-mark', 'aria-hidden': 'true', text: active ? (this.sort.dir < 0 ? ' ▾' : ' ▴') : '' })));
      }));
      let rows = this.tableRows();
      if (this.filter) rows = rows.filter((row) => row.name.toLowerCase().includes(this.filter) || row.node.type.toLowerCase().includes(this.filter));
      const { key, dir } = this.sort;
      const sortKey = key === 'interval' ? 'low' : key;
      rows.sort((a, b) => {
        const x = a[sortKey];
        const y = b[sortKey];
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === 'string' ? x.localeCompare(y) : x - y) * dir;
      });
      const shown = rows.slice(0, TABLE_MAX_ROWS);
      const body = $('tbody', r);
      body.replaceChildren(...shown.map((row) => {
        const cells = columns.map((c) => {
          let text;
          if (c.key === 'energy' || c.key === 'measured') text = fmtMJ(row[c.key]);
          else if (c.key === 'share' || c.key === 'ofParent') text = fmtPct(row[c.key]);
          else if (c.key === 'error') text = row.error === null ? '—' : signedPct(row.error);
          else if (c.key === 'interval') text = row.interval ?? '—';
          else text = row[c.key];
          const cell = h('td', { class: c.num ? 'num' : c.key, text });
          if (c.key === 'name') {
            cell.title = text;
            if (row.node.extrapolated) cell.append(' ', extrapolatedMark());
          }
          if (c.key === 'error' && row.error !== null && Math.abs(row.error) > 10) cell.classList.add('bad');
          return cell;
        });
        const tr = h('tr', { tabindex: '-1', 'data-id': row.id, class: row.node.synthetic ? 'synthetic' : null }, cells);
        tr.addEventListener('click', () => this.reveal(row.id));
        return tr;
      }));
      if (body.firstElementChild) body.firstElementChild.tabIndex = 0; // one tab stop; arrows move within
      $('.table-note', r).textContent = rows.length > shown.length
        ? `Showing ${shown.length} of ${rows.length} nodes; filter to narrow. ↑/↓ move, Enter or a click finds a row in the tree.`
        : `${rows.length} nodes. ↑/↓ move, Enter or a click finds a row in the tree.`;
    }

    onTableKey(e) {
      const tr = e.target.closest('tr');
      if (!tr) return;
      const rows = $$('tr', tr.parentElement);
      const i = rows.indexOf(tr);
      const target = { ArrowDown: rows[i + 1], ArrowUp: rows[i - 1], Home: rows[0], End: rows[rows.length - 1],
        PageDown: rows[Math.min(rows.length - 1, i + 10)], PageUp: rows[Math.max(0, i - 10)] }[e.key];
      if (e.key === 'Enter') this.reveal(tr.dataset.id);
      else if (target) {
        tr.tabIndex = -1;
        target.tabIndex = 0;
        target.focus();
      } else return;
      e.preventDefault();
    }

    sortBy(key) {
      this.sort = this.sort.key === key ? { key, dir: -this.sort.dir } : { key, dir: key === 'name' || key === 'level' ? 1 : -1 };
      this.renderTable();
      $(`thead th[aria-sort] button`, this.root)?.focus();
    }
  }

  // ---------------------------------------------------------------- comparison of the two panes

  function renderComparison(a, b) {
    const box = $('#compare-summary');
    if (!a?.prep || !b?.prep) { box.hidden = true; return; }
    const ta = a.prep.total;
    const tb = b.prep.total;
    const title = (p) => `${p.view.model_name} ${p.view.batch_size}×${p.view.seq_len}`;
    const ratio = ta && tb ? tb / ta : null;
    const sa = new Map(typeShares(a.prep, 'innermost').map((s) => [s.type, s]));
    const sb = new Map(typeShares(b.prep, 'innermost').map((s) => [s.type, s]));
    const types = [...new Set([...sa.keys(), ...sb.keys()])]
      .sort((x, y) => Math.max(sb.get(y)?.share ?? 0, sa.get(y)?.share ?? 0) - Math.max(sb.get(x)?.share ?? 0, sa.get(x)?.share ?? 0))
      .slice(0, 10);
    const cell = (s) => h('td', { class: 'num', text: s ? `${fmtPct(s.share)} · ${fmtMJ(s.energy)}` : '—' });
    box.replaceChildren(
      h('h2', { text: 'A vs B' }),
      h('p', { class: 'ratio' },
        h('strong', { text: ratio === null ? '—' : `${fmtNum(ratio, 2)}×` }),
        ` B (${title(b.prep)}, ${fmtMJ(tb)}) uses ${ratio === null ? '?' : ratio >= 1 ? 'more' : 'less'} energy than A (${title(a.prep)}, ${fmtMJ(ta)}).`),
      h('table', { class: 'nodes compare' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Module type' }), h('th', { scope: 'col', class: 'num', text: 'A' }), h('th', { scope: 'col', class: 'num', text: 'B' }))),
        h('tbody', {}, types.map((t) => h('tr', {}, h('td', { text: t }), cell(sa.get(t)), cell(sb.get(t)))))),
    );
    box.hidden = false;
  }

  // ---------------------------------------------------------------- controls

  const message = $('#message');
  const say = (text, kind = '') => { message.textContent = text; message.className = `message ${kind}`; };
  const panes = [new Pane(0), new Pane(1)];
  const files = []; // records loaded from run files: {name, records}
  let catalog = null;

  const forms = () => $$('#queries form.query');

  function buildFormB() {
    const a = $('#query-a');
    const b = a.cloneNode(true);
    b.id = 'query-b';
    b.dataset.pane = '1';
    b.hidden = true;
    $('.query-title', b).textContent = 'B';
    $('.query-title', b).setAttribute('aria-label', 'View B');
    $('#queries').append(b);
  }

  /** Option values are JSON: {kind: preset|local|dataset|file|report, model, dataset?, index?}. */
  function fillModelSelects() {
    for (const form of forms()) {
      const select = form.elements.model;
      const previous = select.value;
      const groups = [];
      const group = (label, options) => { if (options.length) groups.push(h('optgroup', { label }, options)); };
      const opt = (value, label) => h('option', { value: JSON.stringify(value), text: label });
      if (REPORT) {
        group('This report', REPORT.records.map((r, i) => opt({ kind: 'report', index: i }, `${r.model_name} · ${r.batch_size}×${r.seq_len}`)));
      }
      if (catalog) {
        group('Models (traced here)', catalog.models.filter((m) => m.source === 'preset').map((m) => opt({ kind: 'preset', model: m.name }, m.name)));
        group('Model directories', catalog.models.filter((m) => m.source === 'local').map((m) => opt({ kind: 'local', model: m.name }, m.name)));
        for (const ds of catalog.datasets) {
          group(`Dataset ${ds.name}`, catalog.models.filter((m) => m.dataset === ds.name).map((m) =>
            opt({ kind: 'dataset', model: m.name, dataset: ds.name }, `${m.name}${m.measured ? ' (measured)' : ''}`)));
        }
      }
      files.forEach((f, fi) => group(`File ${f.name}`, f.records.map((r, i) => opt({ kind: 'file', file: fi, index: i }, `${r.model_name} · ${r.batch_size}×${r.seq_len}`))));
      select.replaceChildren(...groups);
      if (previous && $$('option', select).some((o) => o.value === previous)) select.value = previous;
      syncSizeFields(form);
    }
  }

  function fillPredictors() {
    for (const form of forms()) {
      const select = form.elements.predictor;
      const list = catalog?.predictors ?? [];
      select.replaceChildren(...list.map((p) => h('option', { value: p.name, text: p.hardware ? `${p.name} (${p.hardware})` : p.name, selected: p.default })));
      select.disabled = !list.length;
    }
  }

  function choice(form) {
    try { return JSON.parse(form.elements.model.value); } catch { return null; }
  }

  /** Records (report, file) fix the size; dataset models offer their sizes. */
  function syncSizeFields(form) {
    const c = choice(form);
    const fixed = !c || c.kind === 'report' || c.kind === 'file';
    for (const name of ['batch_size', 'seq_len']) {
      const input = form.elements[name];
      input.disabled = fixed;
      input.closest('label').classList.toggle('disabled', fixed);
    }
    form.elements.predictor.disabled = fixed || c?.kind === undefined || !(catalog?.predictors?.length);
    if (c?.kind === 'dataset') {
      const entry = catalog.models.find((m) => m.dataset === c.dataset && m.name === c.model);
      const sizes = entry?.sizes ?? [];
      const b = Number(form.elements.batch_size.value);
      const s = Number(form.elements.seq_len.value);
      if (sizes.length && !sizes.some(([x, y]) => x === b && y === s)) {
        form.elements.batch_size.value = sizes[0][0];
        form.elements.seq_len.value = sizes[0][1];
      }
      setDatalist(form, 'batch_size', [...new Set(sizes.map((z) => z[0]))]);
      setDatalist(form, 'seq_len', [...new Set(sizes.map((z) => z[1]))]);
    } else {
      setDatalist(form, 'batch_size', [1, 8, 16, 24, 32]);
      setDatalist(form, 'seq_len', [32, 64, 128, 256, 512]);
    }
  }

  function setDatalist(form, name, values) {
    const id = `${form.id}-${name}-list`;
    let list = document.getElementById(id);
    if (!list) { list = h('datalist', { id }); form.append(list); form.elements[name].setAttribute('list', id); }
    list.replaceChildren(...values.map((v) => h('option', { value: v })));
  }

  function checkSize(form) {
    const limits = catalog?.limits;
    for (const [name, max, label] of [['batch_size', limits?.max_batch_size, 'Batch size'], ['seq_len', limits?.max_seq_len, 'Sequence length']]) {
      const input = form.elements[name];
      const v = Number(input.value);
      if (!Number.isInteger(v) || v < 1 || (max && v > max)) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return `${label} must be a whole number from 1 to ${max ?? '∞'}.`;
      }
      input.removeAttribute('aria-invalid');
    }
    return null;
  }

  async function load(form) {
    const pane = panes[Number(form.dataset.pane)];
    const c = choice(form);
    if (!c) { say('Pick a model first.', 'error'); return; }
    mountPanes();
    let view;
    if (c.kind === 'report') view = REPORT.records[c.index];
    else if (c.kind === 'file') view = files[c.file].records[c.index];
    else {
      const bad = checkSize(form);
      if (bad) { say(bad, 'error'); return; }
      const params = {
        model: c.model,
        batch_size: form.elements.batch_size.value,
        seq_len: form.elements.seq_len.value,
        predictor: form.elements.predictor.value || null,
        dataset: c.dataset ?? null,
      };
      pane.setBusy(`Computing ${c.model} at ${params.batch_size}×${params.seq_len}${c.kind === 'dataset' ? '' : ' (the first request traces the model: a few seconds)'}…`);
      say('');
      try {
        view = await api('api/energy', params);
      } catch (err) {
        pane.setError(err.message);
        say(err.message, 'error');
        return;
      }
      saveHash();
    }
    pane.show(view);
    say(`Showing ${view.model_name} at ${view.batch_size}×${view.seq_len} in ${'AB'[pane.index]}.`);
    renderComparison(panes[0], comparing() ? panes[1] : null);
  }

  const comparing = () => $('#compare').checked;

  function mountPanes() {
    const host = $('#panes');
    const wanted = comparing() ? panes : [panes[0]];
    host.replaceChildren(...wanted.map((p) => p.root));
    host.classList.toggle('two', comparing());
    $('#empty').hidden = true;
  }

  function saveHash() {
    if (REPORT) return;
    const parts = forms().filter((f) => !f.hidden).map((f) => {
      const c = choice(f);
      if (!c || (c.kind !== 'preset' && c.kind !== 'local' && c.kind !== 'dataset')) return null;
      return new URLSearchParams({ m: c.model, k: c.kind, d: c.dataset ?? '', b: f.elements.batch_size.value, s: f.elements.seq_len.value, p: f.elements.predictor.value }).toString();
    });
    if (parts.every(Boolean)) history.replaceState(null, '', `#${parts.map(encodeURIComponent).join('|')}`);
  }

  function restoreHash() {
    const raw = window.location.hash.slice(1);
    if (!raw) return false;
    const parts = raw.split('|').map((p) => new URLSearchParams(decodeURIComponent(p)));
    if (parts.length > 1) { $('#compare').checked = true; onCompareToggle(); }
    let any = false;
    parts.slice(0, 2).forEach((q, i) => {
      const form = forms()[i];
      const value = JSON.stringify(q.get('k') === 'dataset' ? { kind: 'dataset', model: q.get('m'), dataset: q.get('d') } : { kind: q.get('k'), model: q.get('m') });
      if (!$$('option', form.elements.model).some((o) => o.value === value)) return;
      form.elements.model.value = value;
      form.elements.batch_size.value = q.get('b');
      form.elements.seq_len.value = q.get('s');
      if (q.get('p')) form.elements.predictor.value = q.get('p');
      syncSizeFields(form);
      form.elements.batch_size.value = q.get('b');
      form.elements.seq_len.value = q.get('s');
      load(form);
      any = true;
    });
    return any;
  }

  function onCompareToggle() {
    const on = comparing();
    $('#query-b').hidden = !on;
    if (!on) { $('#compare-summary').hidden = true; }
    if (panes[0].prep) mountPanes();
    if (on && panes[0].prep && !panes[1].prep) {
      // Start B from A's choice so that changing just the input size compares two sizes.
      const a = $('#query-a');
      const b = $('#query-b');
      b.elements.model.value = a.elements.model.value;
      syncSizeFields(b);
      for (const n of ['batch_size', 'seq_len', 'predictor']) b.elements[n].value = a.elements[n].value;
      b.elements.seq_len.focus();
    }
  }

  async function onFile(e) {
    const file = e.target.files?.[0];
    if (!file) return;
    const text = await file.text();
    const { records, errors } = parseJsonl(text, file.name);
    e.target.value = '';
    if (!records.length) { say(errors[0] ?? `${file.name}: no records`, 'error'); return; }
    files.push({ name: file.name, records });
    fillModelSelects();
    const form = $('#query-a');
    form.elements.model.value = JSON.stringify({ kind: 'file', file: files.length - 1, index: 0 });
    syncSizeFields(form);
    await load(form);
    const skipped = errors.length ? ` ${errors.length} bad line(s) skipped; first: ${errors[0]}` : '';
    say(`Loaded ${records.length} record(s) from ${file.name}; pick one in the model list.${skipped}`, errors.length ? 'warn' : '');
  }

  /** Files of the data dir the server skips: a short note near the model picker, expandable to one row each. */
  async function showProblems() {
    let problems;
    try {
      ({ problems } = await api('api/problems'));
    } catch {
      return; // an older server without the endpoint: nothing to say
    }
    const box = $('#problems');
    if (!problems?.length) { box.hidden = true; return; }
    const count = new Set(problems.map((p) => p.file)).size;
    $('summary', box).textContent = `${count} file${count === 1 ? ' in the data dir is' : 's in the data dir are'} skipped`;
    $('ul', box).replaceChildren(...problems.map((p) =>
      h('li', { text: `${p.file}${p.line === null || p.line === undefined ? '' : `:${p.line}`} — ${p.message}` })));
    box.hidden = false;
  }

  async function init() {
    buildFormB();
    for (const form of forms()) {
      form.addEventListener('submit', (e) => { e.preventDefault(); load(form); });
      form.elements.model.addEventListener('change', () => syncSizeFields(form));
    }
    $('#compare').addEventListener('change', onCompareToggle);
    $('#run-file').addEventListener('change', onFile);
    if (REPORT) {
      document.body.classList.add('report');
      document.title = REPORT.title;
      $('#subtitle').textContent = REPORT.title;
      fillModelSelects();
      fillPredictors();
      if (REPORT.records.length) await load($('#query-a'));
      return;
    }
    try {
      catalog = await api('api/models');
    } catch (err) {
      say(`Cannot list models: ${err.message}`, 'error');
      return;
    }
    fillModelSelects();
    fillPredictors();
    showProblems();
    const hw = catalog.predictors.find((p) => p.default)?.hardware;
    const badge = $('#hardware');
    if (hw) { badge.hidden = false; badge.replaceChildren('Predictions stand for ', h('strong', { text: hw })); }
    const notes = [catalog.framework_error, catalog.predictor_error].filter(Boolean);
    if (notes.length) say(notes.join(' '), 'warn');
    if (!catalog.models.length) say('No models: install the torch tracer or pass --data-dir with datasets.', 'error');
    else if (!restoreHash()) {
      const preferred = $$('option', $('#query-a').elements.model).find((o) => JSON.parse(o.value).model === 'bert-base-uncased');
      if (preferred) { $('#query-a').elements.model.value = preferred.value; syncSizeFields($('#query-a')); }
    }
  }

  window.addEventListener('DOMContentLoaded', () => { init(); });
})();
