/* IrEne-viz page: explore a model's energy tree (served by `irene serve`, or embedded by `irene report`). */
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers (dom.js)

  const { $, $$, h, svg, isNum, sum, fmtNum, fmtMJ, fmtPct, downloadCsv } = window.IreneDom;

  const signedPct = (pct) => (pct > 0 ? '+' : '') + fmtPct(pct);

  /** A node's 90 % interval as "1.23–4.56 mJ", or null when it has none. */
  function fmtInterval(node) {
    if (!isNum(node.predicted_low) || !isNum(node.predicted_high)) return null;
    return `${fmtMJ(node.predicted_low).replace(/ mJ$/, '')}–${fmtMJ(node.predicted_high)}`;
  }

  const EXTRAPOLATED_NOTE = 'predicted outside the training data (this node or a part of it): less certain';
  const extrapolatedMark = () => h('span', { class: 'extrap', title: EXTRAPOLATED_NOTE, text: 'extrapolated' });

  /** How each feature is shown in the details panel and tooltip: label, scale, unit, decimals. */
  const FEATURES = {
    flops: ['FLOPs', 1, 'MFLOPs', 1],
    mem_bytes: ['Memory traffic', 1, 'MiB', 2],
    mem_bytes_moved: ['Memory moved', 1, 'MiB', 2],
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

  /** The colour scale: a share of the model's energy at each stop and its colour, evenly spaced on a log
   *  scale (0.01 % … 50 %), so that deep rows (small shares) differ as much as top ones. The legend draws
   *  exactly these stops, each label under its own colour. */
  const HEAT_STOPS = [
    [0.0001, [255, 247, 188], '0.01 %'],
    [0.001, [254, 217, 118], '0.1 %'],
    [0.01, [253, 141, 60], '1 %'],
    [0.1, [227, 26, 28], '10 %'],
    [0.5, [128, 0, 38], '50 %+'],
  ];
  const LOG_LOW = Math.log10(HEAT_STOPS[0][0]);
  const LOG_SPAN = Math.log10(HEAT_STOPS[HEAT_STOPS.length - 1][0]) - LOG_LOW;
  /** Where a share lies on the scale, 0..1. */
  const heatPosition = (share) => Math.min(1, Math.max(0, (Math.log10(Math.max(share, 1e-12)) - LOG_LOW) / LOG_SPAN));
  const rgb = (c) => `rgb(${c.map(Math.round).join(' ')})`;

  /** Colour for a share of the model's energy (0..1), interpolated between the two stops around it. */
  function heat(share) {
    const t = heatPosition(share);
    for (let i = 1; i < HEAT_STOPS.length; i += 1) {
      const [s0, c0] = HEAT_STOPS[i - 1];
      const [s1, c1] = HEAT_STOPS[i];
      const t0 = heatPosition(s0);
      const t1 = heatPosition(s1);
      if (t <= t1 || i === HEAT_STOPS.length - 1) {
        const f = Math.min(1, Math.max(0, (t - t0) / (t1 - t0)));
        return rgb(c0.map((v, k) => v + f * (c1[k] - v)));
      }
    }
    return rgb(HEAT_STOPS[0][1]);
  }

  // ---------------------------------------------------------------- the data

  /** Per-token figures of a view: the server's (irene_core.tree.per_token), else derived the same way
   *  for a run file read in the browser (decode makes batch tokens; prefill and forward batch × seq). */
  function perTokenOf(view) {
    if (view.per_token) return view.per_token;
    const phase = view.phase ?? 'forward';
    const tokens = phase === 'decode' ? view.batch_size : view.batch_size * view.seq_len;
    const measured = view.root.ground_truth_energy;
    const energy = measured ?? view.root.predicted_energy;
    const latency = view.root.features?.times_mean;
    const kv = view.meta?.kv_cache_bytes;
    return {
      phase, context_len: view.context_len ?? null, dtype: view.dtype ?? 'float32', tokens_per_call: tokens,
      energy_j_per_token: isNum(energy) ? energy / tokens : null,
      energy_source: isNum(measured) ? 'measured' : isNum(energy) ? 'predicted' : null,
      latency_s_per_token: latency ? latency / tokens : null, tokens_per_s: latency ? tokens / latency : null,
      kv_cache_mib: isNum(kv) ? kv / 2 ** 20 : null, kv_cache_dtype: view.meta?.kv_cache_dtype ?? null,
    };
  }

  /** "decode, context 1,024, bfloat16" */
  const phaseText = (t) => `${t.phase}${t.context_len ? `, context ${fmtNum(t.context_len, 0)}` : ''}, ${t.dtype}`;

  /** Which machine the record stands for, beside the hardware its predictions stand for. */
  function recordOrigin(view) {
    if (view.source === 'preset' || view.source === 'local') {
      return view.meta?.traced_on === 'meta' || !view.device
        ? 'traced by name on the meta device (structure only, nothing measured)'
        : `traced on ${view.device}`;
    }
    return view.device ? `record of ${view.device}` : 'record of an unnamed device';
  }

  const energyOf = (node) => node.predicted_energy ?? node.ground_truth_energy ?? null;

  /** Model features that make two subtrees the same computation (with type and structure). */
  const SAME_FEATURES = ['batch_size', 'seq_len', 'flops', 'mem_bytes', 'num_parameters'];

  /** What makes two subtrees identical: the node's `signature` when the record has one, else its type,
   *  level, model features and its children's signatures, in order. */
  function signatureOf(node, memo) {
    let sig = memo.get(node.id);
    if (sig === undefined) {
      sig = node.signature ?? JSON.stringify([node.type, node.level, node.synthetic,
        SAME_FEATURES.map((k) => node.features?.[k] ?? null), node.children.map((c) => signatureOf(c, memo))]);
      memo.set(node.id, sig);
    }
    return sig;
  }

  /** "encoder.layer.7" → ["encoder.layer", 7]; null for a scope that does not end in an index. */
  function indexed(node) {
    const m = /^(.*)\.(\d+)$/.exec(node.scope);
    return m && !node.synthetic ? [m[1], Number(m[2])] : null;
  }

  /** Runs (2 or more) of consecutive identical siblings numbered one after the other (layer.0, layer.1…). */
  function runsOf(children, memo) {
    const runs = [];
    let current = null;
    for (const child of children) {
      const at = indexed(child);
      const last = current?.members[current.members.length - 1];
      if (at && current && at[0] === current.prefix && at[1] === indexed(last)[1] + 1
          && signatureOf(child, memo) === signatureOf(last, memo)) {
        current.members.push(child);
      } else {
        current = at ? { prefix: at[0], members: [child] } : null;
        if (current) runs.push(current);
      }
    }
    return runs.filter((r) => r.members.length > 1);
  }

  /** A collapsed run as a tree entry: the members' sums, and their mean and spread per layer. */
  function runEntry(run) {
    const { members } = run;
    const first = indexed(members[0])[1];
    const pred = members.map((m) => m.predicted_energy);
    const meas = members.map((m) => m.ground_truth_energy);
    const measured = meas.every(isNum) ? meas : null;
    const mean = measured ? sum(measured) / measured.length : null;
    return {
      id: `run:${members[0].id}`,
      run: true,
      scope: run.prefix,
      label: `${run.prefix.split('.').pop()}.${first}–${first + members.length - 1} × ${members.length}`,
      type: members[0].type,
      level: members[0].level,
      features: {},
      synthetic: false,
      predicted_energy: pred.every(isNum) ? sum(pred) : null,
      ground_truth_energy: measured ? sum(measured) : null,
      mean_energy: sum(members.map((m) => energyOf(m) ?? 0)) / members.length,
      measured_mean: mean,
      measured_sd: measured ? Math.sqrt(sum(measured.map((x) => (x - mean) ** 2)) / measured.length) : null,
      children: members,
      sorted: members,
    };
  }

  /** Index a tree view: parents, depth and shares of every node, the collapsed runs of identical layers
   *  (`runs`, by id; `node.sorted` lists a node's runs and other children by energy), and what it carries. */
  function prepare(view) {
    const info = new Map();
    const runs = new Map();
    const memo = new Map();
    const total = energyOf(view.root);
    let hasPred = false;
    let hasMeas = false;
    const shares = (e, pe, parent) => ({
      share: total && e !== null ? e / total : null,
      ofParent: pe && e !== null ? e / pe : parent ? null : 1,
    });
    const visit = (node, parent, depth, run) => {
      const pe = parent ? energyOf(parent) : null;
      hasPred ||= isNum(node.predicted_energy);
      hasMeas ||= isNum(node.ground_truth_energy);
      info.set(node.id, { node, parent, depth, run, ...shares(energyOf(node), pe, parent) });
      const grouped = runsOf(node.children, memo).map(runEntry);
      const inRun = new Set(grouped.flatMap((r) => r.children));
      const entries = [...grouped, ...node.children.filter((c) => !inRun.has(c))];
      node.sorted = entries.sort((a, b) => (energyOf(b) ?? -1) - (energyOf(a) ?? -1));
      for (const r of grouped) {
        runs.set(r.id, { node: r, parent: node, depth: depth + 1, ...shares(energyOf(r), energyOf(node), node) });
        for (const member of r.children) visit(member, node, depth + 2, r);
      }
      for (const child of node.children) if (!inRun.has(child)) visit(child, node, depth + 1, null);
    };
    visit(view.root, null, 1, null);
    return { view, info, runs, total, hasPred, hasMeas, count: info.size, entry: (id) => info.get(id) ?? runs.get(id) };
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
      signature: typeof d.signature === 'string' ? d.signature : null,
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
          phase: typeof d.phase === 'string' ? d.phase : 'forward',
          context_len: Number.isInteger(d.context_len) ? d.context_len : null,
          dtype: typeof d.dtype === 'string' ? d.dtype : 'float32',
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

  /** Labels of what errors against measured energy are (the API's `error_basis`); a file does not say,
   *  so its errors count as in-sample. */
  const ERROR_BASIS = {
    'in-sample': 'the predictor was trained on this model\'s records: this error may be in-sample (optimistic)',
    'held-out': 'the predictor was not trained on this model: an out-of-sample error',
  };
  const errorBasis = (view) => view.error_basis ?? 'in-sample';

  /** Heading, scope line and the figures of one tree entry (a node or a run of identical layers). */
  function describe(prep, id) {
    const rec = prep.entry(id);
    if (!rec) return null;
    const { node } = rec;
    const rows = [];
    const add = (label, value, cls) => rows.push(h('dt', { text: label }), h('dd', { text: value, class: cls }));
    if (node.run) add('Layers', `${node.children.length} identical (same type, features and structure)`);
    if (isNum(node.predicted_energy)) add(node.run ? 'Energy (predicted, sum)' : 'Energy (predicted)', fmtMJ(node.predicted_energy), 'strong');
    const interval = fmtInterval(node);
    if (interval) add('90 % interval', interval);
    if (node.extrapolated) add('Extrapolated', `yes: ${EXTRAPOLATED_NOTE}`, 'extrap-text');
    if (isNum(node.ground_truth_energy)) {
      add(node.run ? 'Energy (measured, sum)' : 'Energy (measured)', fmtMJ(node.ground_truth_energy), isNum(node.predicted_energy) ? null : 'strong');
      if (isNum(node.predicted_energy) && node.ground_truth_energy > 0) {
        add(`Prediction error (${errorBasis(prep.view)})`, signedPct((100 * (node.predicted_energy - node.ground_truth_energy)) / node.ground_truth_energy));
      }
    }
    if (node.run) {
      add('Per layer', isNum(node.measured_mean)
        ? `${fmtMJ(node.measured_mean)} ± ${fmtMJ(node.measured_sd)} measured (mean ± sd)`
        : `${fmtMJ(node.mean_energy)} mean`);
    }
    const tokens = perTokenOf(prep.view);
    const energy = energyOf(node);
    if (isNum(energy)) add('Per token', `${fmtMJ(energy / tokens.tokens_per_call)} (÷ ${fmtNum(tokens.tokens_per_call, 0)} tokens)`);
    add('Figures are', `J per call for the whole batch (${prep.view.batch_size} × ${prep.view.seq_len}), ${phaseText(tokens)}`);
    if (isNum(node.predicted_energy)) add('Predicted for', `${prep.view.hardware ?? 'the predictor\'s hardware (not stated)'} by ${prep.view.predictor ?? 'a predictor'}`);
    if (isNum(node.ground_truth_energy)) add('Measured on', recordOrigin(prep.view));
    add('Share of parent', fmtPct(rec.ofParent === null ? null : 100 * rec.ofParent));
    add('Share of model', fmtPct(rec.share === null ? null : 100 * rec.share));
    for (const [key, [label, scale, unit, digits]] of Object.entries(FEATURES)) {
      if (key in node.features) add(label, `${fmtNum(node.features[key] * scale, digits)}${unit ? ` ${unit}` : ''}`);
    }
    for (const [key, value] of Object.entries(node.features)) {
      if (!(key in FEATURES) && !HIDDEN_FEATURES.has(key)) add(key, fmtNum(value, 3));
    }
    const title = node.synthetic ? 'Own ops' : node.run ? `${node.label} ${node.type}` : node.type;
    return {
      title,
      badge: node.synthetic ? 'own ops' : node.run ? 'layers' : node.level,
      scope: node.synthetic ? OWN_OPS_NOTE : node.run ? `${node.scope}.* (expand to see each layer)` : node.scope || '(the whole model)',
      rows,
    };
  }

  function showTooltip(pane, id, anchor) {
    const d = describe(pane.prep, id);
    if (!d) return;
    tooltip.replaceChildren(
      h('div', { class: 'tt-head' }, h('strong', { text: d.title }), h('span', { class: 'badge', text: d.badge })),
      h('p', { class: 'tt-scope', text: d.scope }),
      h('dl', {}, d.rows),
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
  const SWEEP_AXES = { batch: 'batch size (sequences)', seq: 'sequence length (tokens)', context: 'context (tokens in the KV cache)' };
  const SWEEP_DEFAULTS = { batch: '1,2,4,8,16,32', seq: '32,64,128,256,512', context: '128,512,1024,2048,4096' };
  /** The model a sweep predicts for this view: a preset or local model the server lists (else null). */
  const sweepModel = (view) => (!REPORT && catalog?.models.some((m) => m.name === view.model_name && (m.source === 'preset' || m.source === 'local'))
    ? view.model_name : null);

  class Pane {
    constructor(index) {
      this.index = index;
      this.root = $('#pane-template').content.firstElementChild.cloneNode(true);
      this.root.id = `pane-${index}`;
      $('.pane-letter', this.root).textContent = 'AB'[index];
      this.tree = $('.tree', this.root);
      this.details = $('.details', this.root);
      this.items = new Map();
      this.selected = null;
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
      $('table.nodes tbody', r).addEventListener('keydown', (e) => this.onTableKey(e));
      this.tree.addEventListener('keydown', (e) => this.onTreeKey(e));
      this.tree.addEventListener('click', (e) => {
        const li = e.target.closest('[role=treeitem]');
        if (!li) return;
        this.focusItem(li);
        if (e.target.closest('.row')) this.toggle(li);
      });
      this.tree.addEventListener('focusin', (e) => {
        const li = e.target.closest('[role=treeitem]');
        if (li) this.select(li.dataset.id);
      });
      this.tree.addEventListener('mouseover', (e) => {
        const row = e.target.closest('.row');
        if (row) showTooltip(this, row.parentElement.dataset.id, row);
      });
      this.tree.addEventListener('mouseout', (e) => {
        const row = e.target.closest('.row');
        if (row && !row.contains(e.relatedTarget)) hideTooltip(row);
      });
      $('.crumbs', r).addEventListener('click', (e) => {
        const b = e.target.closest('button[data-id]');
        if (b) this.reveal(b.dataset.id);
      });
      this.details.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && this.selected) { e.preventDefault(); this.reveal(this.selected); }
      });
      const icicle = $('.icicle', r);
      icicle.addEventListener('click', (e) => {
        const box = e.target.closest('[data-id]');
        if (box) this.zoomTo(box.dataset.id);
      });
      icicle.addEventListener('keydown', (e) => {
        const box = e.target.closest('[data-id]');
        if (box && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); this.zoomTo(box.dataset.id); }
      });
      $('[data-act=zoom-out]', r).addEventListener('click', () => {
        const parent = this.prep?.info.get(this.zoom)?.parent;
        if (parent) this.zoomTo(parent.id);
      });
      $('[data-act=icicle-csv]', r).addEventListener('click', () => this.icicleCsv());
      $('.sweep-form', r).addEventListener('submit', (e) => { e.preventDefault(); this.loadSweep(); });
      $('[data-act=sweep-csv]', r).addEventListener('click', () => this.sweepCsv());
      $('.sweep-form', r).elements.per_token.addEventListener('change', () => { if (this.sweep) this.renderSweep(); });
      $('.sweep-form', r).elements.vary.addEventListener('change', (e) => {
        $('.sweep-form', r).elements.values.value = SWEEP_DEFAULTS[e.target.value];
      });
    }

    setBusy(text) {
      this.root.setAttribute('aria-busy', 'true');
      const note = $('.pane-note', this.root);
      note.hidden = false;
      note.className = 'pane-note busy';
      note.removeAttribute('role');
      note.textContent = text;
    }

    /** A failed request: the previous view is cleared, so no figure can be taken for the new query's. */
    setError(title, text) {
      this.prep = null;
      this.selected = null;
      this.items.clear();
      const r = this.root;
      r.setAttribute('aria-busy', 'false');
      $('.pane-title', r).textContent = title;
      $('.pane-sub', r).textContent = 'no answer';
      for (const sel of ['.totals', '.tree', '.crumbs', '.bars', 'table.nodes thead tr', 'table.nodes tbody', '.icicle',
        '.icicle-table tbody', '.sweep', '.sweep-table thead', '.sweep-table tbody']) $(sel, r).replaceChildren();
      for (const sel of ['.chart-note', '.table-note', '.icicle-path', '.sweep-note']) $(sel, r).textContent = '';
      this.sweep = null;
      this.details.replaceChildren(h('p', { class: 'muted', text: 'Nothing to show.' }));
      r.classList.add('failed');
      const note = $('.pane-note', r);
      note.hidden = false;
      note.className = 'pane-note error';
      note.setAttribute('role', 'alert');
      note.textContent = text;
    }

    show(view) {
      this.prep = prepare(view);
      this.selected = null;
      this.root.classList.remove('failed');
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
      this.sweep = null;
      $('.sweep', this.root).replaceChildren();
      for (const el of $$('.sweep-table thead, .sweep-table tbody', this.root)) el.replaceChildren();
      $('[data-act=sweep-csv]', this.root).disabled = true;
      $('.sweep-form', this.root).elements.per_token.checked = view.phase === 'decode';
      $('.sweep-note', this.root).textContent = sweepModel(view)
        ? `Predicted energy of ${view.model_name} as one size varies, the others as shown above.`
        : 'Sweeps predict presets and local models of the server: pick one above.';
      this.zoomTo(view.root.id);
      this.select(view.root.id);
    }

    // -- icicle: energy share, click to zoom

    zoomTo(id) {
      const rec = this.prep?.info.get(id);
      if (!rec) return;
      if (!rec.node.children.length && rec.parent) { this.select(id); return; } // a leaf: nothing below to widen
      this.zoom = id;
      this.renderIcicle();
    }

    renderIcicle() {
      const { info } = this.prep;
      const top = info.get(this.zoom).node;
      const total = energyOf(top) || 0;
      const W = Math.max(320, Math.round($('.icicle', this.root).clientWidth) || 640);
      const ROW = 24;
      const DEPTH = 6;
      const boxes = [];
      const place = (node, x, w, depth) => {
        boxes.push({ node, x, w, depth });
        if (depth + 1 >= DEPTH || w < 1) return;
        const kids = node.children.filter((c) => (energyOf(c) ?? 0) > 0).sort((a, b) => energyOf(b) - energyOf(a));
        const sumKids = sum(kids.map(energyOf));
        let cx = x;
        for (const c of kids) {
          const cw = sumKids > 0 ? (w * energyOf(c)) / Math.max(sumKids, energyOf(node) ?? 0) : 0;
          place(c, cx, cw, depth + 1);
          cx += cw;
        }
      };
      place(top, 0, W, 0);
      const height = ROW * (1 + Math.max(...boxes.map((b) => b.depth)));
      const name = (node) => (node.synthetic ? 'own ops' : nodeLabel(node, this.prep.view.model_name));
      const chart = svg('svg', { viewBox: `0 0 ${W} ${height}`, class: 'icicle-svg', role: 'group', 'aria-label': `Energy share within ${name(top)}: each row one level deeper` });
      for (const { node, x, w, depth } of boxes) {
        const e = energyOf(node);
        const share = total ? e / total : 0;
        const label = `${name(node)}: ${fmtMJ(e)}, ${fmtPct(100 * share)} of ${name(top)}${node.extrapolated ? ', extrapolated' : ''}`;
        const g = svg('g', { 'data-id': node.id, tabindex: w >= 4 ? 0 : -1, role: 'button', 'aria-label': label, class: node.extrapolated ? 'ice extrap-box' : 'ice' },
          svg('title', { text: label }),
          svg('rect', { x: x + 0.5, y: depth * ROW + 0.5, width: Math.max(0, w - 1), height: ROW - 1, fill: heat(info.get(node.id)?.share ?? 0) }));
        if (node.extrapolated && w > 6) g.append(svg('line', { x1: x + 2, x2: x + w - 2, y1: (depth + 1) * ROW - 3, y2: (depth + 1) * ROW - 3, class: 'extrap-line' }));
        if (w > 70) g.append(svg('text', { class: heatPosition(info.get(node.id)?.share ?? 0) > 0.55 ? 'on-dark' : null, x: x + 5, y: depth * ROW + ROW / 2 + 4, text: `${name(node)} ${fmtPct(100 * share)}`.slice(0, Math.floor(w / 7)) }));
        chart.append(g);
      }
      $('.icicle', this.root).replaceChildren(chart);
      const path = [];
      for (let at = info.get(this.zoom); at; at = at.parent ? info.get(at.parent.id) : null) path.unshift(name(at.node));
      $('.icicle-path', this.root).textContent = `Zoomed into ${path.join(' › ')} (${fmtMJ(total)} per call, whole batch)`;
      $('[data-act=zoom-out]', this.root).disabled = !info.get(this.zoom).parent;
      this.icicleRows = top.children.map((c) => [name(c), c.type, energyOf(c), total ? (100 * energyOf(c)) / total : null])
        .sort((a, b) => (b[2] ?? 0) - (a[2] ?? 0));
      $('.icicle-table tbody', this.root).replaceChildren(...this.icicleRows.map(([n, t, e, pct]) => h('tr', {},
        h('th', { scope: 'row', text: n }), h('td', { text: t }), h('td', { text: isNum(e) ? fmtNum(1e3 * e, 3) : '—' }), h('td', { text: fmtPct(pct).replace(/ %$/, '') }))));
    }

    icicleCsv() {
      if (!this.icicleRows) return;
      downloadCsv(`${this.prep.view.model_name}-energy-share.csv`, [
        ['node', 'type', 'energy (mJ per call, whole batch)', 'share of zoomed node (%)'],
        ...this.icicleRows.map(([n, t, e, pct]) => [n, t, isNum(e) ? 1e3 * e : null, pct]),
      ]);
    }

    // -- energy vs size (the /api/sweep curve with its 90 % band)

    async loadSweep() {
      const view = this.prep?.view;
      const model = view && sweepModel(view);
      if (!model) return;
      const form = $('.sweep-form', this.root);
      const vary = form.elements.vary.value;
      const decode = view.phase === 'decode' || vary === 'context';
      const params = {
        model, vary, values: form.elements.values.value.replace(/\s+/g, ''),
        batch_size: view.batch_size, seq_len: decode ? 1 : view.seq_len,
        phase: decode ? 'decode' : view.phase !== 'forward' ? view.phase : null,
        context_len: decode && vary !== 'context' ? view.context_len : null,
        dtype: view.dtype, predictor: view.predictor, dataset: view.source === 'dataset' ? view.dataset : null,
      };
      const note = $('.sweep-note', this.root);
      note.textContent = 'Computing the curve (each new point traces the model)…';
      try {
        this.sweep = await api('api/sweep', params);
      } catch (err) {
        this.sweep = null;
        $('.sweep', this.root).replaceChildren();
        note.textContent = err.message;
        return;
      }
      this.renderSweep();
    }

    renderSweep() {
      const { points, vary, model } = this.sweep;
      const ok = points.filter((p) => isNum(p.predicted_energy));
      const failed = points.filter((p) => !isNum(p.predicted_energy));
      const axis = SWEEP_AXES[vary];
      const W = 640;
      const H = 260;
      const m = { l: 78, r: 16, t: 12, b: 44 };
      const xs = points.map((p) => p.value);
      const logX = Math.max(...xs) / Math.min(...xs) > 8;
      const fx = (v) => (logX ? Math.log2(v) : v);
      const [x0, x1] = [fx(Math.min(...xs)), fx(Math.max(...xs))];
      const px = (v) => m.l + (x1 === x0 ? 0.5 : (fx(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
      // per token: each point's energies ÷ its tokens per call (decode: the batch; else batch × sequence)
      const perToken = $('.sweep-form', this.root).elements.per_token.checked;
      const k = (p) => (perToken && p.energy_j_per_token ? p.energy_j_per_token / p.predicted_energy : 1);
      const measured = points.filter((p) => isNum(p.measured_energy));
      const top = 1.1 * Math.max(...ok.map((p) => k(p) * (p.predicted_high ?? p.predicted_energy)),
        ...measured.map((p) => k(p) * p.measured_energy), 0) || 1;
      const py = (j) => H - m.b - (j / top) * (H - m.t - m.b);
      const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'sweep-svg', role: 'img',
        'aria-label': `Predicted energy of ${model} vs ${axis}, with its 90 % interval band (values in the data table)` });
      for (let i = 0; i <= 4; i += 1) {
        const j = (top * i) / 4;
        chart.append(svg('line', { x1: m.l, x2: W - m.r, y1: py(j), y2: py(j), class: 'grid' }),
          svg('text', { x: m.l - 6, y: py(j) + 4, 'text-anchor': 'end', text: fmtMJ(j).replace(/ mJ$/, '') }));
      }
      for (const v of xs) chart.append(svg('text', { x: px(v), y: H - m.b + 16, 'text-anchor': 'middle', text: String(v) }));
      chart.append(svg('text', { x: (W + m.l) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-title', text: `${axis}${logX ? ' (log scale)' : ''}` }),
        svg('text', { x: 12, y: (H - m.b) / 2, 'text-anchor': 'middle', class: 'axis-title', transform: `rotate(-90 12 ${(H - m.b) / 2})`, text: perToken ? 'mJ per token' : 'mJ per call (whole batch)' }));
      const banded = ok.filter((p) => isNum(p.predicted_low) && isNum(p.predicted_high));
      if (banded.length) {
        const band = [...banded.map((p) => `${px(p.value)},${py(k(p) * p.predicted_high)}`), ...banded.reverse().map((p) => `${px(p.value)},${py(k(p) * p.predicted_low)}`)];
        chart.append(svg('polygon', { points: band.join(' '), class: 'band' }, svg('title', { text: '90 % interval' })));
      }
      chart.append(svg('polyline', { points: ok.map((p) => `${px(p.value)},${py(k(p) * p.predicted_energy)}`).join(' '), class: 'curve' }));
      for (const p of measured) {
        const [cx, cy] = [px(p.value), py(k(p) * p.measured_energy)];
        chart.append(svg('rect', { x: cx - 4, y: cy - 4, width: 8, height: 8, class: 'measured', transform: `rotate(45 ${cx} ${cy})` },
          svg('title', { text: `${axis} ${p.value}: measured ${fmtMJ(p.measured_energy)} per call` })));
      }
      for (const p of ok) {
        const text = `${axis} ${p.value}: ${fmtMJ(p.predicted_energy)}${isNum(p.predicted_low) ? ` (90 % ${fmtMJ(p.predicted_low).replace(/ mJ$/, '')}–${fmtMJ(p.predicted_high)})` : ''}${p.extrapolated ? ', extrapolated' : ''}`;
        chart.append(svg('circle', { cx: px(p.value), cy: py(k(p) * p.predicted_energy), r: 4, class: p.extrapolated ? 'point extrap-point' : 'point' }, svg('title', { text })));
      }
      $('.sweep', this.root).replaceChildren(chart);
      this.sweepRows = points.map((p) => [p.value, ...[p.predicted_energy, p.predicted_low, p.predicted_high, p.energy_j_per_token, p.measured_energy].map((j) => (isNum(j) ? 1e3 * j : null)), p.extrapolated, p.error ?? '']);
      const headers = [axis, 'predicted (mJ per call, whole batch)', '90 % low (mJ)', '90 % high (mJ)', 'predicted per token (mJ/token)', 'measured (mJ per call, whole batch)', 'extrapolated', 'error'];
      this.sweepHeaders = headers;
      $('.sweep-table thead', this.root).replaceChildren(h('tr', {}, ...headers.map((t) => h('th', { scope: 'col', text: t }))));
      $('.sweep-table tbody', this.root).replaceChildren(...this.sweepRows.map((row) => h('tr', {},
        h('th', { scope: 'row', text: String(row[0]) }),
        ...row.slice(1, 6).map((v) => h('td', { text: isNum(v) ? fmtNum(v, 3) : '—' })),
        h('td', { text: row[6] ? 'yes' : 'no' }), h('td', { text: row[7] }))));
      $('[data-act=sweep-csv]', this.root).disabled = false;
      $('.sweep-note', this.root).textContent = `${this.sweep.phase ?? 'forward'}, ${this.sweep.dtype ?? 'default dtype'}; predicted by ${this.sweep.predictor ?? 'the default predictor'}${this.sweep.hardware ? ` for ${this.sweep.hardware}` : ''}; band: 90 % interval${measured.length ? '; diamonds: measured records of the dataset' : ''}.`
        + (failed.length ? ` No figure at ${failed.map((p) => `${p.value} (${p.error})`).join('; ')}.` : '');
    }

    sweepCsv() {
      if (!this.sweep) return;
      downloadCsv(`${this.sweep.model}-energy-vs-${this.sweep.vary}.csv`, [this.sweepHeaders, ...this.sweepRows]);
    }

    renderHead() {
      const { view, hasPred, hasMeas } = this.prep;
      const r = this.root;
      $('.pane-title', r).textContent = view.model_name;
      const where = view.dataset ? ` · from ${view.dataset}` : view.source === 'local' ? ' · local model' : '';
      const by = hasPred
        ? ` · predicted by ${view.predictor ?? 'a predictor'}${view.hardware ? ` for ${view.hardware}` : ''}`
        : '';
      const tokens = perTokenOf(view);
      $('.pane-sub', r).textContent = `batch ${view.batch_size} × sequence ${view.seq_len} · ${phaseText(tokens)}${where} · ${recordOrigin(view)}${by}`;
      const items = [];
      const add = (label, value, cls, title) => items.push(h('div', { class: cls, title }, h('dt', { text: label }), h('dd', { text: value })));
      const PER_CALL = 'J per call for the whole batch';
      if (hasPred) add('Predicted, per call (whole batch)', fmtMJ(view.root.predicted_energy), 'total-main', PER_CALL);
      if (hasMeas) add('Measured, per call (whole batch)', fmtMJ(view.root.ground_truth_energy), hasPred ? null : 'total-main', PER_CALL);
      if (isNum(tokens.energy_j_per_token)) {
        add(`Per token (${tokens.energy_source})`, `${fmtMJ(tokens.energy_j_per_token)}/token`, 'per-token',
          `energy per call ÷ ${tokens.tokens_per_call} tokens (${tokens.phase === 'decode' ? 'decode: one token per sequence' : 'batch × sequence'})`);
      }
      if (isNum(tokens.tokens_per_s)) add('Throughput', `${fmtNum(tokens.tokens_per_s, 1)} tokens/s · ${fmtNum(1e3 * tokens.latency_s_per_token, 3)} ms/token`);
      if (isNum(tokens.kv_cache_mib)) add('KV cache', `${fmtNum(tokens.kv_cache_mib, 1)} MiB (${tokens.kv_cache_dtype ?? tokens.dtype})`);
      if (hasPred && hasMeas) {
        const err = levelErrors(this.prep);
        add(`Error ml · module · model, ${errorBasis(view)}`,
          [err.ml, err.module, err.model].map((x) => (x === null ? '—' : fmtNum(x, 1))).join(' · ') + ' %', null, ERROR_BASIS[errorBasis(view)]);
      }
      add('Nodes', String(this.prep.count));
      $('.totals', r).replaceChildren(...items);
      this.tree.setAttribute('aria-label', `Energy tree of ${view.model_name}`);
      $('.ramp', r).style.background = `linear-gradient(to right, ${HEAT_STOPS.map(([x, c]) => `${rgb(c)} ${100 * heatPosition(x)}%`).join(', ')})`;
      $('.ramp-labels', r).replaceChildren(...HEAT_STOPS.map(([x, , label]) => {
        const tick = h('span', { text: label });
        tick.style.left = `${100 * heatPosition(x)}%`;
        return tick;
      }));
    }

    // -- tree

    renderTree() {
      this.items.clear();
      // The column of intervals, measured energies and marks only where some row has one.
      this.tree.classList.toggle('plain', ![...this.prep.info.values()].some(({ node }) =>
        fmtInterval(node) || node.extrapolated || isNum(node.ground_truth_energy)) && !this.prep.runs.size);
      const rootLi = this.makeItem(this.prep.view.root);
      this.tree.replaceChildren(rootLi);
      this.expand(rootLi);
      const top = $$(':scope > ul > li', rootLi);
      if (top.length <= 4) for (const child of top) this.expand(child); // open a thin top level one step more
      rootLi.tabIndex = 0;
    }

    /** The row of a node, or of a collapsed run of identical layers (`node.run`). */
    makeItem(node) {
      const rec = this.prep.entry(node.id);
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
      if (node.run) {
        extra.push(h('span', { class: 'per-layer', title: 'energy of one layer: the mean (± the standard deviation of the measured layers)' },
          isNum(node.measured_mean) ? `${fmtMJ(node.measured_mean)} ± ${fmtMJ(node.measured_sd)} per layer` : `${fmtMJ(node.mean_energy)} per layer`));
      }
      if (isNum(measured) && isNum(node.predicted_energy) && measured > 0) {
        const err = (100 * (node.predicted_energy - measured)) / measured;
        extra.push(h('span', { class: `meas ${Math.abs(err) > 10 ? 'bad' : ''}`, title: `measured energy and prediction error (${errorBasis(this.prep.view)}: ${ERROR_BASIS[errorBasis(this.prep.view)]})` },
          `meas ${fmtMJ(measured)} · ${signedPct(err)}`));
      }
      const interval = fmtInterval(node);
      if (interval) extra.push(h('span', { class: 'interval', title: '90 % interval of the prediction', text: `90 % ${interval}` }));
      if (node.extrapolated) extra.push(extrapolatedMark());
      // A functional op carries its calling module's scope: its type is its name.
      const isOp = !node.synthetic && !node.run && rec.parent && rec.parent.scope === node.scope;
      const label = node.run ? node.label : isOp ? node.type : nodeLabel(node, this.prep.view.model_name);
      const row = h('div', { class: `row${node.synthetic ? ' synthetic' : ''}${node.run ? ' run' : ''}` },
        h('span', { class: `caret${hasKids ? '' : ' leaf'}`, 'aria-hidden': 'true' }),
        swatch,
        h('span', { class: 'name' },
          h('span', { class: 'short', text: label }),
          node.synthetic || isOp ? null : h('span', { class: 'type', text: node.type })),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'energy', text: fmtMJ(e) }),
        h('span', { class: 'pct', text: fmtPct(rec.share === null ? null : 100 * rec.share) }),
        h('span', { class: 'extra' }, extra));
      const what = node.synthetic ? 'own ops' : node.run ? `${label} ${node.type}, ${node.children.length} identical layers` : `${node.type} ${node.scope}`;
      const li = h('li', {
        role: 'treeitem',
        tabindex: '-1',
        'data-id': node.id,
        'aria-level': rec.depth,
        'aria-selected': 'false',
        'aria-label': `${what}, ${fmtMJ(e)}, ${fmtPct(rec.share === null ? null : 100 * rec.share)} of model${interval ? `, 90 % interval ${interval}` : ''}${node.extrapolated ? ', extrapolated' : ''}`,
      }, row);
      if (hasKids) li.setAttribute('aria-expanded', 'false');
      this.items.set(node.id, li);
      return li;
    }

    expand(li) {
      if (li.getAttribute('aria-expanded') !== 'false') return;
      let group = $(':scope > ul', li);
      if (!group) {
        const node = this.prep.entry(li.dataset.id).node;
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

    /** Focus a row without any sideways scroll: the tree scrolls vertically, just enough to show it. */
    focusItem(li, focus = true) {
      for (const other of $$('[role=treeitem][tabindex="0"]', this.tree)) other.tabIndex = -1;
      li.tabIndex = 0;
      if (!focus) return;
      li.focus({ preventScroll: true });
      const row = $('.row', li).getBoundingClientRect();
      const box = this.tree.getBoundingClientRect();
      if (row.top < box.top) this.tree.scrollTop -= box.top - row.top;
      else if (row.bottom > box.bottom) this.tree.scrollTop += row.bottom - box.bottom;
      const shown = $('.row', li).getBoundingClientRect(); // the page too (a table row far below), vertically
      if (shown.top < 0 || shown.bottom > window.innerHeight) window.scrollBy(0, shown.top - window.innerHeight / 3);
    }

    /** The ids from the root down to ``id``'s parent, collapsed runs included. */
    ancestors(id) {
      const chain = [];
      for (let rec = this.prep.entry(id); rec?.parent;) {
        const up = rec.run ?? rec.parent;
        chain.unshift(up.id);
        rec = rec.run ? this.prep.runs.get(up.id) : this.prep.info.get(up.id);
      }
      return chain;
    }

    /** Expand the ancestors of a node (or run), then focus it and show it. */
    reveal(id) {
      for (const up of this.ancestors(id)) this.expand(this.items.get(up));
      this.focusItem(this.items.get(id));
    }

    /** The selected node: its ancestors in the breadcrumb and its figures in the details panel. */
    select(id) {
      if (!this.prep?.entry(id)) return;
      this.items.get(this.selected)?.setAttribute('aria-selected', 'false');
      this.selected = id;
      this.items.get(id)?.setAttribute('aria-selected', 'true');
      const name = (nid) => {
        const { node } = this.prep.entry(nid);
        return node.run ? node.label : node.synthetic ? 'own ops' : nodeLabel(node, this.prep.view.model_name);
      };
      $('.crumbs', this.root).replaceChildren(...this.ancestors(id).map((nid) =>
        h('li', {}, h('button', { type: 'button', 'data-id': nid, title: this.prep.entry(nid).node.scope || 'the whole model', text: name(nid) }))),
      h('li', { 'aria-current': 'location', text: name(id) }));
      const d = describe(this.prep, id);
      this.details.replaceChildren(
        h('h3', { class: 'details-title' }, h('span', { text: d.title }), ' ', h('span', { class: 'badge', text: d.badge })),
        h('p', { class: 'tt-scope', text: d.scope }),
        h('dl', {}, d.rows));
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
        case 'i':
          this.details.focus();
          break;
        default:
          return;
      }
      e.preventDefault();
      if (target) this.focusItem(target);
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
      const head = $('table.nodes thead tr', r);
      const showMeasured = this.prep.hasMeas && this.prep.hasPred;
      const hasInterval = [...this.prep.info.values()].some((rec) => fmtInterval(rec.node));
      const columns = TABLE_COLUMNS.filter((c) => (showMeasured || (c.key !== 'measured' && c.key !== 'error'))
        && (hasInterval || c.key !== 'interval'));
      head.replaceChildren(...columns.map((c) => {
        const active = this.sort.key === c.key;
        const label = c.key === 'energy' ? (this.prep.hasPred ? 'Predicted' : 'Measured')
          : c.key === 'error' ? `Error (${errorBasis(this.prep.view)})` : c.label;
        return h('th', { scope: 'col', class: `col-${c.key}${c.num ? ' num' : ''}`, title: c.key === 'error' ? ERROR_BASIS[errorBasis(this.prep.view)] : null, 'aria-sort': active ? (this.sort.dir < 0 ? 'descending' : 'ascending') : null },
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
      const body = $('table.nodes tbody', r);
      body.replaceChildren(...shown.map((row) => {
        const cells = columns.map((c) => {
          let text;
          if (c.key === 'energy' || c.key === 'measured') text = fmtMJ(row[c.key]);
          else if (c.key === 'share' || c.key === 'ofParent') text = fmtPct(row[c.key]);
          else if (c.key === 'error') text = row.error === null ? '—' : signedPct(row.error);
          else if (c.key === 'interval') text = row.interval ?? '—';
          else text = row[c.key];
          const cell = h('td', { class: `col-${c.key} ${c.num ? 'num' : c.key}`, text });
          if (c.key === 'interval') cell.title = text;
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
    const same = ratio !== null && fmtMJ(ta) === fmtMJ(tb);
    const sa = new Map(typeShares(a.prep, 'innermost').map((s) => [s.type, s]));
    const sb = new Map(typeShares(b.prep, 'innermost').map((s) => [s.type, s]));
    const types = [...new Set([...sa.keys(), ...sb.keys()])]
      .sort((x, y) => Math.max(sb.get(y)?.share ?? 0, sa.get(y)?.share ?? 0) - Math.max(sb.get(x)?.share ?? 0, sa.get(x)?.share ?? 0))
      .slice(0, 10);
    const cell = (s) => h('td', { class: 'num', text: s ? `${fmtPct(s.share)} · ${fmtMJ(s.energy)}` : '—' });
    box.replaceChildren(
      h('h2', { text: 'A vs B' }),
      same
        ? h('p', { class: 'ratio' }, h('strong', { text: 'Same energy' }), ` A (${title(a.prep)}) and B (${title(b.prep)}) both use ${fmtMJ(ta)}.`)
        : h('p', { class: 'ratio' },
          h('strong', { text: ratio === null ? '—' : `${fmtNum(ratio, ratio > 0.99 && ratio < 1.01 ? 4 : 2)}×` }),
          ` B (${title(b.prep)}, ${fmtMJ(tb)}) uses ${ratio === null ? '?' : ratio > 1 ? 'more' : 'less'} energy than A (${title(a.prep)}, ${fmtMJ(ta)}).`),
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
        ...phaseParams(form),
      };
      pane.setBusy(`Computing ${c.model} at ${params.batch_size}×${params.seq_len}${c.kind === 'dataset' ? '' : ' (the first request traces the model: a few seconds)'}…`);
      say('');
      try {
        view = await api('api/energy', params);
      } catch (err) {
        pane.setError(`${c.model} · ${params.batch_size}×${params.seq_len}`, err.message); // said once, in the pane
        renderComparison(panes[0], comparing() ? panes[1] : null);
        return;
      }
      saveHash();
    }
    pane.show(view);
    if (pane.index === 0 && view.hardware) showHardware(view.hardware, `A: ${view.predictor ?? 'a predictor'}`);
    say(`Showing ${view.model_name} at ${view.batch_size}×${view.seq_len} in ${'AB'[pane.index]}.`);
    renderComparison(panes[0], comparing() ? panes[1] : null);
  }

  const comparing = () => $('#compare').checked;

  /** The header's badge: the hardware the predictions of view A stand for (not only the default predictor's). */
  function showHardware(hardware, by) {
    const badge = $('#hardware');
    badge.hidden = !hardware;
    if (hardware) badge.replaceChildren(`Predictions (${by}) stand for `, h('strong', { text: hardware }));
  }

  /** The form's phase, context and dtype as API parameters (left out at their defaults). */
  function phaseParams(form) {
    const phase = form.elements.phase.value;
    return {
      phase: phase || null,
      context_len: phase === 'decode' ? form.elements.context_len.value || null : null,
      dtype: form.elements.dtype.value || null,
    };
  }

  /** Decode makes one token per sequence after a context: sequence length 1, the context field on. */
  function syncPhase(form, chosen) {
    const decode = form.elements.phase.value === 'decode';
    form.elements.context_len.disabled = !decode;
    if (decode && chosen) {
      form.elements.seq_len.value = 1;
      if (!form.elements.context_len.value) form.elements.context_len.value = 1024;
    }
  }

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
      const { phase, context_len: context, dtype } = phaseParams(f);
      return new URLSearchParams({ m: c.model, k: c.kind, d: c.dataset ?? '', b: f.elements.batch_size.value, s: f.elements.seq_len.value, p: f.elements.predictor.value, ph: phase ?? '', c: context ?? '', t: dtype ?? '' }).toString();
    });
    if (parts.every(Boolean)) history.replaceState(null, '', `#${parts.map(encodeURIComponent).join('|')}`);
  }

  function restoreHash() {
    const raw = window.location.hash.slice(1);
    if (!raw || raw.startsWith('view=whatif')) return false; // the what-if view's state (whatif.js)
    const parts = raw.split('|').map((p) => new URLSearchParams(decodeURIComponent(p)));
    if (parts.length > 1) { $('#compare').checked = true; onCompareToggle(); }
    let any = false;
    parts.slice(0, 2).forEach((q, i) => {
      const form = forms()[i];
      // k (preset, local, dataset) may be left out: the first listed model of that name (and dataset d) is meant.
      const wanted = (v) => v.model === q.get('m') && (!q.get('k') || v.kind === q.get('k')) && (!q.get('d') || v.dataset === q.get('d'));
      const found = $$('option', form.elements.model).find((o) => wanted(JSON.parse(o.value)));
      if (!found) { say(`The link names '${q.get('m')}', which this server does not list.`, 'error'); return; }
      form.elements.model.value = found.value;
      form.elements.batch_size.value = q.get('b');
      form.elements.seq_len.value = q.get('s');
      if (q.get('p')) form.elements.predictor.value = q.get('p');
      form.elements.phase.value = q.get('ph') ?? '';
      form.elements.context_len.value = q.get('c') ?? '';
      form.elements.dtype.value = q.get('t') ?? '';
      syncPhase(form, false);
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
      for (const n of ['batch_size', 'seq_len', 'predictor', 'phase', 'context_len', 'dtype']) b.elements[n].value = a.elements[n].value;
      syncPhase(b, false);
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
      form.elements.phase.addEventListener('change', () => syncPhase(form, true));
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
    $('.topbar').append(h('a', { class: 'api-link', href: 'api', text: 'API reference' }));
    showHardware(catalog.predictors.find((p) => p.default)?.hardware, 'the default predictor');
    const notes = [catalog.framework_error, catalog.predictor_error].filter(Boolean);
    if (notes.length) say(notes.join(' '), 'warn');
    if (!catalog.models.length) say('No models: install the torch tracer or pass --data-dir with datasets.', 'error');
    else if (!restoreHash()) {
      const first = catalog.first_view; // computed while the server started: the first Show is quick
      const form = $('#query-a');
      const preferred = first && $$('option', form.elements.model).find((o) => JSON.parse(o.value).model === first.model);
      if (preferred) {
        form.elements.model.value = preferred.value;
        syncSizeFields(form);
        form.elements.batch_size.value = first.batch_size;
        form.elements.seq_len.value = first.seq_len;
      }
    }
  }

  window.addEventListener('DOMContentLoaded', () => { init(); });
})();
