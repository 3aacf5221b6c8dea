/* IrEne-viz what-if view: predicted energy of architecture choices (POST /api/whatif) per module type and,
 * with accuracy scores, energy vs accuracy with its Pareto front (the paper's §6 and its figure 4). */
'use strict';

(() => {
  const { $, $$, h, svg, isNum, fmtNum, fmtPct, downloadCsv, downloadSvg, downloadPng } = window.IreneDom;

  /** The settings a base model can vary (irene_core.whatif), with a hint of their values. */
  const VARY_KEYS = [
    ['layers', 'layers', '2,4,6,8'],
    ['hidden', 'hidden size', '256,512,768'],
    ['heads', 'attention heads', '4,8,12'],
    ['intermediate', 'feed-forward size', '1024,3072'],
  ];
  const MAX_POINTS = 64;
  const UNIT = 'J per call, whole batch';
  const MINIATURE = /^bert-L(\d+)-H(\d+)$/;
  /** Module types beyond the first PALETTE.length − 1 are drawn together as "other". */
  const PALETTE = ['#e8590c', '#3b5bdb', '#2b8a3e', '#ae3ec9', '#f59f00', '#0c8599', '#c2255c', '#868e96'];
  const EXTRAPOLATED = 'predicted outside the training data: less certain';

  /** Joules → "12.34 J" (more decimals for small values). */
  function fmtJ(joules, unit = true) {
    if (!isNum(joules)) return '—';
    const a = Math.abs(joules);
    if (a === 0) return `0${unit ? ' J' : ''}`;
    return `${fmtNum(joules, a >= 100 ? 1 : a >= 1 ? 2 : a >= 0.01 ? 3 : 5)}${unit ? ' J' : ''}`;
  }
  /** An axis tick: 0.5, 20, 0.025. */
  const fmtTick = (v) => String(Number(v.toPrecision(3)));
  const fmtInterval = (p) => (isNum(p.low) && isNum(p.high) ? `${fmtJ(p.low, false)}–${fmtJ(p.high)}` : null);
  const fmtAcc = (a) => (isNum(a) ? String(Number(a.toPrecision(4))) : '—');
  const fmtParams = (n) => (n >= 1e9 ? `${fmtNum(n / 1e9, 2)} B` : n >= 1e6 ? `${fmtNum(n / 1e6, 1)} M` : fmtNum(n, 0));
  const settingsText = (s) => Object.entries(s).map(([k, v]) => `${k}=${v}`).join(', ') || '—';
  /** A point's name on a chart: its settings when it varies a base model (they share its name), else the model. */
  const chartName = (p) => (Object.keys(p.settings).length ? settingsText(p.settings) : p.model);

  // ---------------------------------------------------------------- accuracy CSV, parsed here

  /** The cells of one CSV line (double quotes as in RFC 4180). */
  function csvCells(line) {
    const cells = [];
    let cell = '';
    let quoted = false;
    for (let i = 0; i < line.length; i += 1) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cell += '"'; i += 1; } else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { cells.push(cell); cell = ''; } else cell += c;
    }
    cells.push(cell);
    return cells.map((x) => x.trim());
  }

  /** `model,score` lines (higher is better; a first line whose score is not a number is a header; empty
   *  lines and # comments are skipped) → {accuracy, errors: ["name:line: what is wrong"]}. */
  function parseAccuracy(text, name) {
    const accuracy = {};
    const errors = [];
    let first = true;
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim() || line.trim().startsWith('#')) return;
      const at = `${name}:${i + 1}`;
      const cells = csvCells(line);
      const header = first;
      first = false;
      if (cells.length !== 2) { errors.push(`${at}: expected two columns, model,score (found ${cells.length})`); return; }
      const [model, score] = cells;
      const value = score === '' ? NaN : Number(score);
      if (!Number.isFinite(value)) {
        if (!header) errors.push(`${at}: score '${score}' of '${model}' is not a number`);
        return;
      }
      if (!model) errors.push(`${at}: the model name is empty`);
      else if (model in accuracy) errors.push(`${at}: '${model}' is listed twice`);
      else accuracy[model] = value;
    });
    return { accuracy, errors };
  }

  // ---------------------------------------------------------------- the view's form

  let catalog = null;
  let form = null;
  let result = null;
  let asked = {}; // the request `result` answers
  let accuracyName = 'pasted';
  let treeHash = '';
  const view = () => $('#whatif');

  const field = (label, control, cls = '') => h('label', { class: `field ${cls}` }, label, control);
  const intInput = (name, value) => h('input', { name, type: 'number', min: 1, step: 1, value, inputmode: 'numeric', required: true });

  function buildForm() {
    const miniatures = catalog.models.filter((m) => m.source === 'preset' && MINIATURE.test(m.name));
    const bases = catalog.models.filter((m) => m.source === 'preset'); // the server's what-if traces presets only
    form = h('form', { class: 'card whatif-form', novalidate: true, 'aria-labelledby': 'whatif-title' },
      h('h2', { id: 'whatif-title', text: 'What-if: the energy of architecture choices' }),
      h('p', { class: 'muted', text: `Each point is traced on the meta device (nothing is built or run) and predicted; up to ${MAX_POINTS} points. With accuracy scores, the chart shows energy vs accuracy and its Pareto front.` }),
      h('fieldset', { class: 'wi-mode' }, h('legend', { text: 'Points' }),
        h('label', {}, h('input', { type: 'radio', name: 'mode', value: 'models', checked: true }), ' a list of models'),
        h('label', {}, h('input', { type: 'radio', name: 'mode', value: 'vary' }), ' one model with varied settings')),
      h('div', { class: 'wi-models' },
        field('Models (one per line or comma-separated)', h('textarea', { name: 'models', rows: 3, spellcheck: 'false', 'aria-describedby': 'wi-count' }), 'wi-wide'),
        h('button', { type: 'button', 'data-act': 'miniatures', disabled: !miniatures.length,
          title: miniatures.length ? miniatures.map((m) => m.name).join(', ') : 'this server lists no BERT miniatures' },
        '24 BERT miniatures')),
      h('div', { class: 'wi-vary', hidden: true },
        field('Base model', h('select', { name: 'base' }, bases.map((m) => h('option', { value: m.name, text: m.name })))),
        VARY_KEYS.map(([key, label, hint]) => field(`Vary ${label}`, h('input', { name: `vary-${key}`, placeholder: hint, size: 12, 'aria-describedby': 'wi-count', inputmode: 'numeric' }), 'wi-vary-field'))),
      h('p', { id: 'wi-count', class: 'hint', 'aria-live': 'polite' }),
      h('div', { class: 'wi-row' },
        field('Batch size', intInput('batch_size', 16), 'field-size'),
        field('Sequence length', intInput('seq_len', 128), 'field-size'),
        field('Predictor', h('select', { name: 'predictor' }, catalog.predictors.map((p) => h('option', { value: p.name, selected: p.default, text: p.hardware ? `${p.name} (${p.hardware})` : p.name })))),
        field('Budget (J per call)', h('input', { name: 'budget_j', type: 'number', min: 0, step: 'any', placeholder: 'optional' }), 'field-size'),
        field('Min accuracy', h('input', { name: 'min_accuracy', type: 'number', step: 'any', placeholder: 'optional' }), 'field-size')),
      h('fieldset', { class: 'wi-accuracy' }, h('legend', { text: 'Accuracy (optional): model,score per line, higher is better' }),
        h('label', { class: 'file-button' }, h('input', { type: 'file', name: 'accuracy_file', accept: '.csv,text/csv,text/plain' }), h('span', { text: 'Read a CSV file…' })),
        field('or paste it', h('textarea', { name: 'accuracy', rows: 3, spellcheck: 'false', placeholder: 'model,score\nbert-L2-H128,0.71', 'aria-describedby': 'wi-acc-note' }), 'wi-wide'),
        h('div', { id: 'wi-acc-note', class: 'hint', 'aria-live': 'polite' })),
      h('div', { class: 'wi-row' }, h('button', { type: 'submit', class: 'primary', text: 'Predict' }),
        h('p', { class: 'message', role: 'status', 'aria-live': 'polite' })));
    const results = h('div', { class: 'wi-results', 'aria-busy': 'false' }); // the form's status line says when it is done
    view().replaceChildren(form, results);

    form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
    for (const radio of $$('input[name=mode]', form)) radio.addEventListener('change', syncMode);
    $('[data-act=miniatures]', form).addEventListener('click', () => {
      form.elements.models.value = miniatures.map((m) => [m.name, ...m.name.match(MINIATURE).slice(1).map(Number)])
        .sort((a, b) => a[1] - b[1] || a[2] - b[2]).map(([name]) => name).join('\n');
      countPoints();
    });
    form.addEventListener('input', (e) => { if (e.target.name === 'accuracy') { accuracyName = 'pasted'; checkAccuracy(); } else countPoints(); });
    form.elements.accuracy_file.addEventListener('change', async (e) => {
      const file = e.target.files?.[0];
      if (!file) return;
      form.elements.accuracy.value = await file.text();
      accuracyName = file.name;
      e.target.value = '';
      checkAccuracy();
    });
  }

  const mode = () => form.elements.mode.value;

  function syncMode() {
    const vary = mode() === 'vary';
    $('.wi-models', form).hidden = vary;
    $('.wi-vary', form).hidden = !vary;
    countPoints();
  }

  /** The form's points: {models} or {base, vary}, with the count, or {error} naming the field. */
  function points() {
    if (mode() === 'models') {
      const models = form.elements.models.value.split(/[\s,]+/).filter(Boolean);
      return { models, count: models.length, error: models.length ? null : 'List at least one model.', field: form.elements.models };
    }
    const vary = {};
    for (const [key] of VARY_KEYS) {
      const input = form.elements[`vary-${key}`];
      const text = input.value.trim();
      if (!text) continue;
      const values = text.split(/[\s,]+/).filter(Boolean).map(Number);
      if (!values.every((v) => Number.isInteger(v) && v > 0)) {
        return { error: `Vary ${key}: whole numbers above 0, comma-separated.`, field: input };
      }
      vary[key] = values;
    }
    const count = Object.values(vary).reduce((n, v) => n * v.length, 1);
    return { base: form.elements.base.value, vary, count, error: Object.keys(vary).length ? null : 'Give values for at least one setting to vary.', field: form.elements['vary-layers'] };
  }

  function countPoints() {
    const p = points();
    $('#wi-count').textContent = p.count ? `${p.count} point${p.count === 1 ? '' : 's'}${p.count > MAX_POINTS ? ` — more than ${MAX_POINTS}: narrow the list` : ''}` : '';
  }

  /** The accuracy field parsed; its bad lines named under it. */
  function checkAccuracy() {
    const { accuracy, errors } = parseAccuracy(form.elements.accuracy.value, accuracyName);
    const note = $('#wi-acc-note');
    const count = Object.keys(accuracy).length;
    form.elements.accuracy.toggleAttribute('aria-invalid', errors.length > 0);
    note.className = errors.length ? 'hint bad-lines' : 'hint';
    note.replaceChildren(
      count || errors.length ? h('span', { text: `${count} score${count === 1 ? '' : 's'} read${errors.length ? `; ${errors.length} bad line${errors.length === 1 ? '' : 's'}:` : ''}` }) : '',
      errors.length ? h('ul', {}, errors.slice(0, 8).map((e) => h('li', { text: e }))) : '');
    return { accuracy, errors };
  }

  const say = (text, kind = '') => {
    const message = $('.message', form);
    message.textContent = text;
    message.className = `message ${kind}`;
  };

  /** The request body from the form, or null (having said what is wrong and focused that field). */
  function query() {
    const p = points();
    const refuse = (text, input) => { say(text, 'error'); input?.setAttribute('aria-invalid', 'true'); input?.focus(); return null; };
    for (const input of $$('[aria-invalid]', form)) if (input.name !== 'accuracy') input.removeAttribute('aria-invalid');
    if (p.error) return refuse(p.error, p.field);
    if (p.count > MAX_POINTS) return refuse(`${p.count} points: at most ${MAX_POINTS} per what-if.`, p.field);
    const body = p.models ? { models: p.models } : { base: p.base, vary: p.vary };
    for (const [name, label] of [['batch_size', 'Batch size'], ['seq_len', 'Sequence length']]) {
      const v = Number(form.elements[name].value);
      if (!Number.isInteger(v) || v < 1) return refuse(`${label} must be a whole number from 1.`, form.elements[name]);
      body[name] = v;
    }
    body.predictor = form.elements.predictor.value;
    const { accuracy, errors } = checkAccuracy();
    if (errors.length) return refuse(`Accuracy: ${errors[0]}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}.`, form.elements.accuracy);
    if (Object.keys(accuracy).length) body.accuracy = accuracy;
    for (const name of ['budget_j', 'min_accuracy']) {
      const raw = form.elements[name].value.trim();
      if (!raw) continue;
      const v = Number(raw);
      if (!Number.isFinite(v) || (name === 'budget_j' && v <= 0)) return refuse(`${name === 'budget_j' ? 'Budget' : 'Min accuracy'} must be a number${name === 'budget_j' ? ' above 0' : ''}.`, form.elements[name]);
      body[name] = v;
    }
    return body;
  }

  // ---------------------------------------------------------------- the URL keeps the view's state

  const isWhatifHash = (hash) => hash.startsWith('#view=whatif');

  function saveHash() {
    if (!form) return;
    const q = new URLSearchParams({ view: 'whatif', mode: mode() });
    if (mode() === 'models') q.set('models', form.elements.models.value.split(/[\s,]+/).filter(Boolean).join(','));
    else {
      q.set('base', form.elements.base.value);
      for (const [key] of VARY_KEYS) if (form.elements[`vary-${key}`].value.trim()) q.set(key, form.elements[`vary-${key}`].value.replace(/\s+/g, ''));
    }
    for (const name of ['batch_size', 'seq_len', 'predictor', 'budget_j', 'min_accuracy', 'accuracy']) {
      if (form.elements[name].value.trim()) q.set(name, form.elements[name].value);
    }
    history.replaceState(null, '', `#${q}`);
  }

  function restoreHash(hash) {
    const q = new URLSearchParams(hash.slice(1));
    form.elements.mode.value = q.get('mode') === 'vary' ? 'vary' : 'models';
    form.elements.models.value = (q.get('models') ?? '').split(',').filter(Boolean).join('\n');
    if (q.get('base')) form.elements.base.value = q.get('base');
    for (const [key] of VARY_KEYS) form.elements[`vary-${key}`].value = q.get(key) ?? '';
    for (const name of ['batch_size', 'seq_len', 'predictor', 'budget_j', 'min_accuracy', 'accuracy']) {
      if (q.has(name)) form.elements[name].value = q.get(name);
    }
    syncMode();
    checkAccuracy();
    return q.has('models') || q.has('base');
  }

  // ---------------------------------------------------------------- asking the server

  async function run() {
    const body = query();
    if (!body) return;
    saveHash();
    const results = $('.wi-results', view());
    results.setAttribute('aria-busy', 'true');
    say(`Predicting ${body.models ? body.models.length : Object.values(body.vary).reduce((n, v) => n * v.length, 1)} point(s) (new ones are traced: about a tenth of a second each)…`, 'busy');
    let response;
    let answer;
    try {
      response = await fetch('api/whatif', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body) });
      answer = await response.json().catch(() => null);
    } catch (err) {
      answer = { detail: `the server did not answer (${err.message})` };
    }
    results.setAttribute('aria-busy', 'false');
    if (!response?.ok) {
      result = null;
      results.replaceChildren(h('p', { class: 'pane-note error', role: 'alert', text: answer?.detail ?? `HTTP ${response?.status}` }));
      say('');
      return;
    }
    result = answer;
    asked = body;
    render(results);
    say(`${result.points.length} point(s) predicted.`);
  }

  // ---------------------------------------------------------------- the answer

  const chartCard = (title, name, chart, note, table, exports) => h('section', { class: 'card wi-card' },
    h('div', { class: 'section-head' }, h('h3', { text: title }),
      h('div', { class: 'tools', role: 'group', 'aria-label': `Save ${title}` },
        h('button', { type: 'button', 'data-act': 'svg', onclick: () => downloadSvg(name, chart), text: 'SVG' }),
        h('button', { type: 'button', 'data-act': 'png', onclick: () => downloadPng(name, chart), text: 'PNG' }),
        h('button', { type: 'button', 'data-act': 'csv', onclick: exports, text: 'CSV' }))),
    chart, h('p', { class: 'muted wi-note', text: note }),
    h('details', { class: 'data-table' }, h('summary', { text: 'Data table' }), table));

  function render(results) {
    const { points: pts } = result;
    const withAccuracy = pts.filter((p) => isNum(p.accuracy));
    const parts = [
      h('header', { class: 'wi-head' },
        h('h2', { text: `${pts.length} point${pts.length === 1 ? '' : 's'} at batch ${result.batch_size} × sequence ${result.seq_len}` }),
        h('p', { class: 'wi-provenance', text: `Predicted by ${result.predictor} for ${result.device ?? 'hardware the predictor does not state'} · every energy is ${result.unit ?? UNIT} (90 % intervals) · traced on the meta device, nothing measured` })),
    ];
    if (result.answers.length) parts.push(h('ul', { class: 'wi-answers' }, result.answers.map(answerItem)));
    if (result.notices.length) parts.push(h('p', { class: 'pane-note warn', text: `Notices: ${result.notices.join('; ')}` }));
    parts.push(resultTable(pts), h('div', { class: 'wi-charts' }, withAccuracy.length ? scatterCard(withAccuracy) : null, barsCard(pts)));
    results.replaceChildren(...parts);
  }

  function answerItem(a) {
    const found = a.model
      ? [h('strong', { text: a.model }), ` — accuracy ${fmtAcc(a.accuracy)}, ${fmtJ(a.energy)} per call.`]
      : [h('strong', { text: 'no model qualifies' }), '.'];
    const note = a.note ? ` Note: ${a.note}.` : '';
    return h('li', {}, `${a.question[0].toUpperCase()}${a.question.slice(1)}: `, ...found, note);
  }

  function extrapolatedMark(p) {
    const why = p.notices.length ? p.notices.join('; ') : EXTRAPOLATED;
    return h('span', { class: 'extrap wi-extrap', title: why }, h('span', { 'aria-hidden': 'true', text: '⚠' }), h('span', { class: 'sr-only', text: ` extrapolated: ${why}` }));
  }

  function resultTable(pts) {
    const varied = pts.some((p) => Object.keys(p.settings).length);
    const heads = ['Model', varied ? 'Settings' : null, `Energy (${UNIT})`, '90 % interval (J)', 'Parameters', 'Accuracy', 'Pareto'].filter(Boolean);
    const noted = pts.filter((p) => p.extrapolated || p.notices.length);
    return h('section', { class: 'card wi-card' },
      h('div', { class: 'table-scroll' }, h('table', { class: 'nodes wi-table' },
        h('caption', { class: 'sr-only', text: 'Predicted energy of each point' }),
        h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', { scope: 'col', class: i >= (varied ? 2 : 1) ? 'num' : null, text: t })))),
        h('tbody', {}, pts.map((p) => h('tr', { class: p.pareto ? 'pareto' : null },
          h('th', { scope: 'row', class: 'name', text: p.model, title: p.model }),
          varied ? h('td', { text: settingsText(p.settings) }) : null,
          h('td', { class: 'num' }, fmtJ(p.energy), p.extrapolated ? [' ', extrapolatedMark(p)] : null),
          h('td', { class: 'num', text: fmtInterval(p) ?? '—' }),
          h('td', { class: 'num', text: fmtParams(p.parameters), title: `${fmtNum(p.parameters, 0)} parameters` }),
          h('td', { class: 'num', text: fmtAcc(p.accuracy) }),
          h('td', { class: 'num' }, p.pareto ? [h('span', { 'aria-hidden': 'true', text: '✓' }), h('span', { class: 'sr-only', text: 'on the Pareto front' })] : '')))))),
      noted.length ? h('details', { class: 'data-table wi-notices' }, h('summary', { text: `Notices of ${noted.length} point${noted.length === 1 ? '' : 's'} (⚠: extrapolated)` }),
        h('ul', {}, noted.map((p) => h('li', {}, h('strong', { text: p.model }), `: ${p.notices.join('; ') || EXTRAPOLATED}`)))) : null);
  }

  /** Round tick values covering [lo, hi]: 1-2-5 steps on a linear axis, 1-2-5 × 10^k on a log axis. */
  function ticks(lo, hi, log) {
    if (log) {
      const out = [];
      for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e += 1) {
        for (const m of [1, 2, 5]) { const v = m * 10 ** e; if (v >= lo && v <= hi) out.push(v); }
      }
      return out;
    }
    const raw = (hi - lo) / 5 || 1;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function scatterCard(pts) {
    const W = 720;
    const H = 380;
    const m = { l: 64, r: 24, t: 16, b: 48 };
    const { budget_j: budget, min_accuracy: floor } = asked;
    const xs = pts.flatMap((p) => [p.low ?? p.energy, p.high ?? p.energy]).concat(isNum(budget) ? [budget] : []);
    const ys = pts.map((p) => p.accuracy).concat(isNum(floor) ? [floor] : []);
    const log = Math.max(...xs) / Math.min(...xs) > 8;
    const f = (v) => (log ? Math.log10(v) : v);
    let [x0, x1] = [f(Math.min(...xs)), f(Math.max(...xs))];
    const padX = (x1 - x0) * 0.04 || Math.abs(x0) * 0.1 || 1;
    [x0, x1] = [x0 - padX, x1 + padX];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const padY = (y1 - y0) * 0.08 || Math.abs(y0) * 0.05 || 1;
    [y0, y1] = [y0 - padY, y1 + padY];
    const px = (v) => m.l + ((f(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
    const py = (a) => H - m.b - ((a - y0) / (y1 - y0)) * (H - m.t - m.b);
    const front = pts.filter((p) => p.pareto).sort((a, b) => a.energy - b.energy);
    const chosen = new Set(result.answers.map((a) => a.model).filter(Boolean));
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'wi-svg wi-scatter', role: 'img',
      'aria-label': `Energy vs accuracy of ${pts.length} points; ${front.length} on the Pareto front: ${front.map((p) => p.model).join(', ')} (values in the data table)` });
    for (const v of ticks(log ? 10 ** x0 : x0, log ? 10 ** x1 : x1, log)) {
      chart.append(svg('line', { x1: px(v), x2: px(v), y1: m.t, y2: H - m.b, class: 'grid' }),
        svg('text', { x: px(v), y: H - m.b + 16, 'text-anchor': 'middle', text: fmtTick(v) }));
    }
    for (const a of ticks(y0, y1, false)) {
      chart.append(svg('line', { x1: m.l, x2: W - m.r, y1: py(a), y2: py(a), class: 'grid' }),
        svg('text', { x: m.l - 6, y: py(a) + 4, 'text-anchor': 'end', text: fmtAcc(a) }));
    }
    chart.append(
      svg('text', { x: (W + m.l) / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis-title', text: `energy (${UNIT})${log ? ', log scale' : ''}` }),
      svg('text', { x: 14, y: (H - m.b) / 2, 'text-anchor': 'middle', class: 'axis-title', transform: `rotate(-90 14 ${(H - m.b) / 2})`, text: 'accuracy (higher is better)' }));
    // Names go beside their dot where they cover no dot and no other name (the rest: tooltips, data table).
    const taken = pts.map((p) => [px(p.energy) - 6, py(p.accuracy) - 6, px(p.energy) + 6, py(p.accuracy) + 6]);
    const label = (cx, cy, text, cls = 'pt-label') => {
      const w = 7 * text.length;
      for (const [x, y, anchor] of [[cx + 8, cy - 6, 'start'], [cx + 8, cy + 14, 'start'], [cx - 8, cy - 6, 'end'], [cx - 8, cy + 14, 'end']]) {
        const box = anchor === 'start' ? [x - 1, y - 11, x + w, y + 3] : [x - w, y - 11, x + 1, y + 3];
        if (box[0] >= 0 && box[2] <= W && !taken.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) {
          taken.push(box);
          return svg('text', { x, y, 'text-anchor': anchor, class: cls, text });
        }
      }
      return '';
    };
    if (isNum(budget)) {
      chart.append(svg('line', { x1: px(budget), x2: px(budget), y1: m.t, y2: H - m.b, class: 'limit' }),
        label(px(budget) - 4, m.t + 12, `budget ${fmtJ(budget)}`, 'limit-label'));
    }
    if (isNum(floor)) {
      chart.append(svg('line', { x1: m.l, x2: W - m.r, y1: py(floor), y2: py(floor), class: 'limit' }),
        label(m.l - 4, py(floor) + 1, `accuracy ≥ ${fmtAcc(floor)}`, 'limit-label'));
    }
    if (front.length > 1) {
      const steps = front.flatMap((p, i) => (i ? [`${px(p.energy)},${py(front[i - 1].accuracy)}`, `${px(p.energy)},${py(p.accuracy)}`] : [`${px(p.energy)},${py(p.accuracy)}`]));
      chart.append(svg('polyline', { points: steps.join(' '), class: 'front' }, svg('title', { text: 'Pareto front: no other point has more accuracy for less energy' })));
    }
    for (const p of [...pts].sort((a, b) => Number(a.pareto) - Number(b.pareto) || a.energy - b.energy)) {
      const [cx, cy] = [px(p.energy), py(p.accuracy)];
      const interval = fmtInterval(p);
      const text = `${p.model}: ${fmtJ(p.energy)}${interval ? ` (90 % ${interval})` : ''}, accuracy ${fmtAcc(p.accuracy)}${p.pareto ? ', on the Pareto front' : ''}${p.extrapolated ? ', extrapolated' : ''}`;
      const g = svg('g', { class: `wi-pt${p.pareto ? ' pareto' : ''}${p.extrapolated ? ' extrap-point' : ''}` }, svg('title', { text }));
      if (interval) {
        g.append(svg('line', { x1: px(p.low), x2: px(p.high), y1: cy, y2: cy, class: 'whisker' }),
          ...[p.low, p.high].map((e) => svg('line', { x1: px(e), x2: px(e), y1: cy - 4, y2: cy + 4, class: 'whisker' })));
      }
      if (chosen.has(p.model)) g.append(svg('circle', { cx, cy, r: 9, class: 'answer' }));
      g.append(svg('circle', { cx, cy, r: p.pareto ? 5.5 : 4, class: 'dot' }));
      if (p.pareto) g.append(label(cx, cy, chartName(p)));
      chart.append(g);
    }
    const rows = pts.map((p) => [p.model, settingsText(p.settings), p.energy, p.low, p.high, p.accuracy, p.pareto ? 'yes' : 'no', p.extrapolated ? 'yes' : 'no']);
    const heads = ['model', 'settings', `energy (${UNIT})`, '90 % low (J)', '90 % high (J)', 'accuracy (score, higher is better)', 'Pareto', 'extrapolated'];
    const table = h('table', { class: 'wi-scatter-table' },
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row', text: r[0] }), h('td', { text: r[1] }),
        ...r.slice(2, 5).map((v) => h('td', { text: fmtJ(v, false) })), h('td', { text: fmtAcc(r[5]) }), h('td', { text: r[6] }), h('td', { text: r[7] })))));
    return chartCard('Energy vs accuracy', 'whatif-energy-vs-accuracy', chart,
      `Filled orange, joined by the step line: the Pareto front (no other point is more accurate for less energy); hollow: extrapolated; whiskers: 90 % interval${chosen.size ? '; rings: the answers above' : ''}.`,
      table, () => downloadCsv('whatif-energy-vs-accuracy.csv', [heads, ...rows]));
  }

  function barsCard(pts) {
    const totals = new Map();
    for (const p of pts) for (const t of p.per_type) totals.set(t.type, (totals.get(t.type) ?? 0) + t.energy);
    const order = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
    const shown = order.length > PALETTE.length ? order.slice(0, PALETTE.length - 1) : order;
    const groups = [...shown, ...(order.length > shown.length ? ['other'] : [])];
    const colour = new Map(groups.map((g, i) => [g, PALETTE[i]]));
    /** Each point's energy per drawn group (a type, or "other"). */
    const perGroup = pts.map((p) => {
      const sums = new Map();
      for (const t of p.per_type) {
        const g = colour.has(t.type) ? t.type : 'other';
        sums.set(g, (sums.get(g) ?? 0) + t.energy);
      }
      return sums;
    });
    const W = 720;
    const ROW = 20;
    const legend = [];
    let [lx, ly] = [0, 17];
    for (const g of groups) {
      const width = 24 + 6.6 * g.length;
      if (lx && lx + width > W) [lx, ly] = [0, ly + 18];
      legend.push(svg('rect', { x: lx + 8, y: ly - 9, width: 10, height: 10, fill: colour.get(g) }), svg('text', { x: lx + 22, y: ly, class: 'legend-label', text: g }));
      lx += width;
    }
    const m = { l: 180, r: 70, t: ly + 17, b: 34 };
    const H = m.t + m.b + ROW * pts.length;
    const top = Math.max(...pts.map((p) => p.high ?? p.energy), 0) || 1;
    const px = (j) => m.l + (j / top) * (W - m.l - m.r);
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'wi-svg wi-bars', role: 'img',
      'aria-label': `Predicted energy of each point, stacked by module type (${groups.join(', ')}); values in the data table` });
    chart.append(...legend);
    for (const v of ticks(0, top, false)) {
      chart.append(svg('line', { x1: px(v), x2: px(v), y1: m.t - 4, y2: H - m.b, class: 'grid' }),
        svg('text', { x: px(v), y: H - m.b + 14, 'text-anchor': 'middle', text: fmtTick(v) }));
    }
    chart.append(svg('text', { x: (W + m.l) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-title', text: `energy (${UNIT}); whisker: 90 % interval` }));
    pts.forEach((p, i) => {
      const y = m.t + i * ROW;
      const name = `${p.extrapolated ? '⚠ ' : ''}${chartName(p)}`;
      chart.append(svg('text', { x: m.l - 6, y: y + ROW / 2 + 4, 'text-anchor': 'end', class: p.pareto ? 'pt-label' : null, text: name.length > 25 ? `${name.slice(0, 24)}…` : name },
        svg('title', { text: p.model })));
      let x = 0;
      for (const g of groups) {
        const e = perGroup[i].get(g);
        if (!(e > 0)) continue; // a model's own ops below 0 (measured below its modules): in the table, not a bar
        chart.append(svg('rect', { x: px(x), y: y + 3, width: Math.max(0, px(x + e) - px(x)), height: ROW - 6, fill: colour.get(g) },
          svg('title', { text: `${p.model} · ${g}: ${fmtJ(e)} (${fmtPct((100 * e) / p.energy)})` })));
        x += e;
      }
      if (isNum(p.low) && isNum(p.high)) chart.append(svg('line', { x1: px(p.low), x2: px(p.high), y1: y + ROW / 2, y2: y + ROW / 2, class: 'whisker' }));
      chart.append(svg('text', { x: px(Math.max(p.energy, p.high ?? 0)) + 5, y: y + ROW / 2 + 4, text: fmtJ(p.energy) }));
    });
    const table = h('table', { class: 'wi-bars-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Model' }), groups.map((g) => h('th', { scope: 'col', text: `${g} (J)` })), h('th', { scope: 'col', text: 'Total (J)' }))),
      h('tbody', {}, pts.map((p, i) => h('tr', {}, h('th', { scope: 'row', text: p.model }),
        groups.map((g) => h('td', { text: fmtJ(perGroup[i].get(g) ?? 0, false) })), h('td', { text: fmtJ(p.energy, false) })))));
    const csv = () => downloadCsv('whatif-energy-per-module-type.csv', [
      ['model', 'settings', 'module type', 'modules', `energy (${UNIT})`, '90 % low (J)', '90 % high (J)', 'share of the point (%)'],
      ...pts.flatMap((p) => p.per_type.map((t) => [p.model, settingsText(p.settings), t.type, t.count, t.energy, t.low, t.high, (100 * t.energy) / p.energy])),
    ]);
    return chartCard('Energy per module type', 'whatif-energy-per-module-type', chart,
      'Each bar is one point\'s predicted energy, split by the module type that owns it; ⚠: extrapolated.', table, csv);
  }

  // ---------------------------------------------------------------- views: the energy tree and the what-if

  async function ensureBuilt() {
    if (form) return true;
    try {
      const response = await fetch('api/models', { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      catalog = await response.json();
    } catch (err) {
      view().replaceChildren(h('p', { class: 'pane-note error', role: 'alert', text: `Cannot list models: ${err.message}` }));
      return false;
    }
    buildForm();
    syncMode();
    return true;
  }

  /** Show the tree view or the what-if view (its form built on first use); the URL follows. */
  async function selectView(name, focus = false) {
    const whatif = name === 'whatif';
    showView(whatif, focus);
    if (!whatif) {
      if (isWhatifHash(window.location.hash)) history.replaceState(null, '', treeHash || `${window.location.pathname}${window.location.search}`);
      return;
    }
    if (!isWhatifHash(window.location.hash)) treeHash = window.location.hash;
    if (await ensureBuilt()) saveHash();
  }

  function showView(whatif, focus) {
    for (const tab of $$('#views [role=tab]')) {
      const on = tab.getAttribute('aria-controls') === (whatif ? 'whatif' : 'view-tree');
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    }
    $('#view-tree').hidden = whatif;
    view().hidden = !whatif;
  }

  async function init() {
    const tabs = $('#views');
    if (!tabs || document.body.classList.contains('report')) return;
    tabs.addEventListener('click', (e) => {
      const tab = e.target.closest('[role=tab]');
      if (tab) selectView(tab.getAttribute('aria-controls') === 'whatif' ? 'whatif' : 'tree');
    });
    tabs.addEventListener('keydown', (e) => {
      if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
      e.preventDefault();
      const onWhatif = $('#tab-whatif').getAttribute('aria-selected') === 'true';
      const next = e.key === 'Home' ? 'tree' : e.key === 'End' ? 'whatif' : onWhatif ? 'tree' : 'whatif';
      selectView(next, true);
    });
    const hash = window.location.hash;
    if (isWhatifHash(hash)) {
      showView(true, false);
      if (await ensureBuilt() && restoreHash(hash)) run();
    }
  }

  window.addEventListener('DOMContentLoaded', () => { init(); });
})();
