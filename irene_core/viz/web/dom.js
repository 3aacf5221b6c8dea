/* IrEne-viz: helpers shared by the page's scripts (app.js, whatif.js) and the API page (api.js):
 * building elements, formatting figures, and exporting a chart as SVG, PNG or CSV. */
'use strict';

(() => {
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
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** Create an SVG element; `attrs` sets attributes (`text`: its text). */
  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined) continue;
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    node.append(...children);
    return node;
  }

  const isNum = (v) => v !== null && v !== undefined;
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);

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

  /** Offer `blob` as a download named `name`. */
  function download(name, blob) {
    const link = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  /** Save `rows` (the first: headers, with units) as a CSV file named `name`. */
  function downloadCsv(name, rows) {
    const cell = (v) => {
      const t = v === null || v === undefined ? '' : String(v);
      return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
    };
    download(name, new Blob([`${rows.map((r) => r.map(cell).join(',')).join('\n')}\n`], { type: 'text/csv' }));
  }

  /** What the page's stylesheet gives a chart's elements, written as presentation attributes so that the
   *  file draws the same without it (attributes, not style="": the page's CSP allows no inline style). */
  const PAINT = ['fill', 'fill-opacity', 'stroke', 'stroke-width', 'stroke-dasharray', 'stroke-opacity', 'opacity',
    'font-family', 'font-size', 'font-weight', 'font-style', 'text-anchor', 'visibility'];

  /** A chart (an <svg> on the page) as a standalone SVG document, on the page's background. */
  function standaloneSvg(chart) {
    const copy = chart.cloneNode(true);
    const from = [chart, ...chart.querySelectorAll('*')];
    const to = [copy, ...copy.querySelectorAll('*')];
    from.forEach((el, i) => {
      const style = getComputedStyle(el);
      for (const prop of PAINT) {
        const value = style.getPropertyValue(prop);
        if (value && !(prop === 'visibility' && value === 'visible')) to[i].setAttribute(prop, value);
      }
    });
    const { width, height } = chart.viewBox.baseVal;
    copy.setAttribute('xmlns', SVG_NS);
    copy.setAttribute('width', width);
    copy.setAttribute('height', height);
    copy.removeAttribute('class');
    const page = getComputedStyle(chart.closest('.card') ?? document.body).backgroundColor;
    copy.prepend(svg('rect', { x: 0, y: 0, width, height, fill: page }));
    return { text: new XMLSerializer().serializeToString(copy), width, height };
  }

  /** Save a chart as `name`.svg. */
  function downloadSvg(name, chart) {
    download(`${name}.svg`, new Blob([standaloneSvg(chart).text], { type: 'image/svg+xml' }));
  }

  /** Save a chart as `name`.png, drawn at twice its size (a data: image on a canvas: nothing leaves the page). */
  function downloadPng(name, chart) {
    const { text, width, height } = standaloneSvg(chart);
    const image = new Image();
    image.onload = () => {
      const canvas = h('canvas', { width: 2 * width, height: 2 * height });
      const context = canvas.getContext('2d');
      context.scale(2, 2);
      context.drawImage(image, 0, 0, width, height);
      canvas.toBlob((blob) => download(`${name}.png`, blob), 'image/png');
    };
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  }

  window.IreneDom = Object.freeze({
    $, $$, h, svg, SVG_NS, isNum, sum, fmtNum, fmtMJ, fmtPct, download, downloadCsv, downloadSvg, downloadPng,
  });
})();
