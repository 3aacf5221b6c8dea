/* IrEne-viz API reference: drawn from the server's own /openapi.json (no CDN, works offline). */
'use strict';

(() => {
  const { h } = window.IreneDom;

  const refName = (ref) => ref.split('/').pop();

  /** "integer, 1–256" / "string, pattern …" / a link to a schema. */
  function typeOf(schema) {
    if (!schema) return '';
    if (schema.$ref) return h('a', { href: `#schema-${refName(schema.$ref)}`, text: refName(schema.$ref) });
    if (schema.anyOf) return schema.anyOf.map((s) => typeOf(s)).flatMap((t, i) => (i ? [' | ', t] : [t]));
    if (schema.type === 'array') return ['list of ', typeOf(schema.items)];
    if (schema.type === 'object' && schema.additionalProperties) return ['map to ', typeOf(schema.additionalProperties)];
    const bounds = [];
    if (schema.minimum !== undefined || schema.maximum !== undefined) bounds.push(`${schema.minimum ?? ''}–${schema.maximum ?? ''}`);
    if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
    if (schema.enum) bounds.push(`one of ${schema.enum.join(', ')}`);
    if (schema.const !== undefined) bounds.push(`= ${schema.const}`);
    return `${schema.type ?? 'any'}${bounds.length ? `, ${bounds.join(', ')}` : ''}`;
  }

  /** How to try an operation: a link for GET, a curl line with the schema's example body for POST. */
  function tryIt(path, method, op) {
    const params = op.parameters ?? [];
    if (method !== 'get') {
      const body = op.requestBody?.content?.['application/json']?.schema;
      const example = JSON.stringify(body?.examples?.[0] ?? {});
      return h('code', { class: 'api-try', text: `curl -s -X POST -H 'Content-Type: application/json' -d '${example}' ${new URL(path.slice(1), window.location.href)}` });
    }
    const example = new URLSearchParams();
    for (const p of params) if (p.required && p.schema?.examples) example.set(p.name, p.schema.examples[0]);
    const href = `${path.slice(1)}${params.some((p) => p.required) ? `?${example}` : ''}`;
    return h('a', { href, text: href });
  }

  function operation(path, method, op) {
    const params = op.parameters ?? [];
    const body = op.requestBody?.content?.['application/json']?.schema;
    return h('section', { class: 'card api-op', id: `op-${path.replaceAll('/', '-')}` },
      h('h2', {}, h('span', { class: 'badge', text: method === 'get' ? 'GET · HEAD' : method.toUpperCase() }), ' ', h('code', { text: path })),
      op.description || op.summary ? h('p', { text: op.description ?? op.summary }) : null,
      params.length ? h('table', { class: 'nodes' },
        h('thead', {}, h('tr', {}, ['Parameter', 'Type', 'Required', 'Meaning'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, params.map((p) => h('tr', {},
          h('td', {}, h('code', { text: p.name })), h('td', {}, typeOf(p.schema)), h('td', { text: p.required ? 'yes' : 'no' }),
          h('td', { text: p.description ?? p.schema?.description ?? '' }))))) : null,
      body ? h('p', {}, 'Body (JSON): ', typeOf(body)) : null,
      h('p', {}, 'Answers: ', Object.entries(op.responses ?? {}).flatMap(([code, r], i) => {
        const schema = r.content?.['application/json']?.schema;
        return [i ? '; ' : '', h('strong', { text: code }), ` ${r.description ?? ''}`, schema ? [' (', typeOf(schema), ')'] : ''];
      })),
      h('p', {}, 'Try: ', tryIt(path, method, op)));
  }

  function schemaSection(name, schema) {
    const props = Object.entries(schema.properties ?? {});
    const required = new Set(schema.required ?? []);
    return h('section', { class: 'card api-op', id: `schema-${name}` },
      h('h2', {}, h('code', { text: name })),
      schema.description ? h('p', { text: schema.description }) : null,
      props.length ? h('table', { class: 'nodes' },
        h('thead', {}, h('tr', {}, ['Field', 'Type', 'Meaning'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, props.map(([key, p]) => h('tr', {},
          h('td', {}, h('code', { text: key }), required.has(key) ? '' : h('small', { text: ' optional' })),
          h('td', {}, typeOf(p)), h('td', { text: p.description ?? '' }))))) : null);
  }

  async function init() {
    const main = document.getElementById('api');
    const message = document.getElementById('api-message');
    let spec;
    try {
      const response = await fetch('openapi.json', { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      spec = await response.json();
    } catch (err) {
      message.textContent = `Cannot read /openapi.json: ${err.message}`;
      message.className = 'message error';
      main.setAttribute('aria-busy', 'false');
      return;
    }
    document.title = `${spec.info.title} API ${spec.info.version}`;
    const ops = Object.entries(spec.paths).flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => operation(path, m, op)));
    const schemas = Object.entries(spec.components?.schemas ?? {}).map(([name, s]) => schemaSection(name, s));
    main.replaceChildren(
      h('p', { class: 'api-intro', text: `${spec.info.description} Version ${spec.info.version}. Every GET endpoint answers HEAD too; answers are gzip-compressed for clients that accept it.` }),
      h('h2', { class: 'api-head', text: 'Endpoints' }), ...ops,
      h('h2', { class: 'api-head', text: 'Schemas' }), ...schemas);
    main.setAttribute('aria-busy', 'false');
  }

  window.addEventListener('DOMContentLoaded', () => { init(); });
})();
