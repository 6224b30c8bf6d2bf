// osprey live dashboard: reads /performance/live (Server-Sent Events) and draws
// gauges, uPlot charts, the active alerts, the models and an event log.
// No framework and no inline code: the page's Content-Security-Policy allows
// scripts and styles from this origin only. Everything user-visible is set with
// textContent, never parsed as HTML.
(function () {
  'use strict';

  var WINDOW = 300; // points kept per series
  var LOG_LINES = 200;
  var STREAM = '/performance/live';

  // ---- formatting -------------------------------------------------------

  function num(v) {
    var a = Math.abs(v);
    if (a < 1e4 && Math.round(v) === v) return String(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1 || a === 0) return v.toFixed(a === 0 ? 0 : 2);
    return String(parseFloat(v.toPrecision(2)));
  }

  function bytes(v) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? v.toFixed(0) : v.toFixed(Math.abs(v) >= 100 ? 0 : 1)) + ' ' + units[i];
  }

  var FORMATS = {
    pct: function (v) { return num(v) + ' %'; },
    ms: function (v) { return Math.abs(v) >= 1000 ? num(v / 1000) + ' s' : num(v) + ' ms'; },
    rate: function (v) { return num(v) + '/s'; },
    count: num,
    bytes: bytes,
    bps: function (v) { return bytes(v) + '/s'; }
  };

  function fmt(v, unit) {
    return v === null || v === undefined || !isFinite(v) ? '–' : FORMATS[unit](v);
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function clock(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function val(v) {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  // ---- what is read from a snapshot ---------------------------------------

  var SERIES = {
    rps: function (s) { return s.http && s.http.rps; },
    error_rate: function (s) { return s.http && s.http.error_rate_percent; },
    in_flight: function (s) { return s.http && s.http.in_flight; },
    p50: function (s) { return s.http && s.http.latency_ms && s.http.latency_ms.p50; },
    p95: function (s) { return s.http && s.http.latency_ms && s.http.latency_ms.p95; },
    p99: function (s) { return s.http && s.http.latency_ms && s.http.latency_ms.p99; },
    queue_depth: function (s) { return s.queue && s.queue.depth; },
    queue_saturation: function (s) { return s.queue && s.queue.saturation_percent; },
    batch_size: function (s) { return s.queue && s.queue.mean_batch_size; },
    batches_per_sec: function (s) { return s.queue && s.queue.batches_per_sec; },
    l1_hit: function (s) { return s.cache && s.cache.l1_hit_rate_percent; },
    l2_hit: function (s) { return s.cache && s.cache.l2_hit_rate_percent; },
    cpu: function (s) { return s.system && s.system.cpu_percent; },
    process_cpu: function (s) { return s.process && s.process.cpu_percent; },
    memory: function (s) { return s.system && s.system.memory_percent; },
    rss: function (s) { return s.process && s.process.rss_bytes; },
    disk: function (s) { return s.system && s.system.disk_percent; },
    disk_read: function (s) { return s.system && s.system.disk_read_bps; },
    disk_write: function (s) { return s.system && s.system.disk_write_bps; },
    net_rx: function (s) { return s.system && s.system.net_rx_bps; },
    net_tx: function (s) { return s.system && s.system.net_tx_bps; },
    db_in_use: function (s) { return s.db && s.db.pool_in_use; },
    db_idle: function (s) { return s.db && s.db.pool_idle; },
    db_p95: function (s) { return s.db && s.db.query_p95_ms; }
  };

  // Each chart: series [key, label, unit, scale]; 'y' is the left axis, 'y2' the right.
  var CHARTS = [
    { id: 'requests', title: 'Requests', series: [['rps', 'requests', 'rate', 'y'], ['error_rate', 'errors', 'pct', 'y2']] },
    { id: 'latency', title: 'Latency', series: [['p50', 'p50', 'ms', 'y'], ['p95', 'p95', 'ms', 'y'], ['p99', 'p99', 'ms', 'y']] },
    { id: 'queue', title: 'Queue', series: [['queue_depth', 'depth', 'count', 'y'], ['queue_saturation', 'saturation', 'pct', 'y2']] },
    { id: 'batches', title: 'Batching', series: [['batch_size', 'mean batch size', 'count', 'y'], ['batches_per_sec', 'batches', 'rate', 'y2']] },
    { id: 'cache', title: 'Cache hit rate', series: [['l1_hit', 'L1', 'pct', 'y'], ['l2_hit', 'L2', 'pct', 'y']], fixed: [0, 100] },
    { id: 'cpu', title: 'CPU', series: [['cpu', 'system', 'pct', 'y'], ['process_cpu', 'osprey', 'pct', 'y']] },
    { id: 'memory', title: 'Memory', series: [['memory', 'system', 'pct', 'y'], ['rss', 'osprey RSS', 'bytes', 'y2']] },
    { id: 'disk', title: 'Disk', series: [['disk', 'used', 'pct', 'y'], ['disk_read', 'read', 'bps', 'y2'], ['disk_write', 'write', 'bps', 'y2']] },
    { id: 'network', title: 'Network', series: [['net_rx', 'received', 'bps', 'y'], ['net_tx', 'sent', 'bps', 'y']] },
    { id: 'db', title: 'Database pool', series: [['db_in_use', 'in use', 'count', 'y'], ['db_idle', 'idle', 'count', 'y'], ['db_p95', 'query p95', 'ms', 'y2']] }
  ];

  var GAUGES = [
    { key: 'cpu', label: 'CPU', unit: 'pct', get: SERIES.cpu },
    { key: 'memory', label: 'Memory', unit: 'pct', get: SERIES.memory },
    { key: 'disk', label: 'Disk', unit: 'pct', get: SERIES.disk },
    { key: 'latency', label: 'p95 latency', unit: 'ms', get: SERIES.p95 },
    { key: 'error_rate', label: 'Error rate', unit: 'pct', get: SERIES.error_rate },
    { key: 'cache', label: 'Cache hit (L1)', unit: 'pct', get: SERIES.l1_hit },
    { key: 'queue', label: 'Queue depth', unit: 'count', get: SERIES.queue_depth }
  ];

  var STATE_TEXT = { ok: 'ok', pending: 'pending', firing: 'FIRING', resolving: 'resolving' };

  // ---- data ----------------------------------------------------------------

  var data = { ts: [], cols: {} };
  Object.keys(SERIES).forEach(function (k) { data.cols[k] = []; });
  var received = 0; // snapshots received, history included
  var events = 0; // alert and log events received
  var intervalMs = 1000;
  var last = null; // the latest snapshot
  var lastArrival = 0;
  var active = new Map(); // alert id -> alert

  function clear() {
    data.ts.length = 0;
    Object.keys(data.cols).forEach(function (k) { data.cols[k].length = 0; });
  }

  function push(s) {
    received++;
    if (typeof s.ts_ms !== 'number') return;
    var t = s.ts_ms / 1000;
    if (data.ts.length && t <= data.ts[data.ts.length - 1]) return; // x must increase
    data.ts.push(t);
    Object.keys(SERIES).forEach(function (k) { data.cols[k].push(val(SERIES[k](s))); });
    if (data.ts.length > WINDOW) {
      data.ts.shift();
      Object.keys(data.cols).forEach(function (k) { data.cols[k].shift(); });
    }
    last = s;
  }

  // ---- charts --------------------------------------------------------------

  var charts = [];
  var css = getComputedStyle(document.documentElement);
  function color(name) {
    return css.getPropertyValue(name).trim();
  }
  var COLORS = ['--c1', '--c2', '--c3', '--c4'];

  // Scales start at zero; with no data yet, bytes show up to 1 KiB, others up to 1.
  function range(fixed, unit) {
    var empty = unit === 'bytes' || unit === 'bps' ? 1024 : 1;
    return function (u, min, max) {
      if (fixed) return fixed;
      if (max === null || !isFinite(max) || max <= 0) return [0, empty];
      return [0, max * 1.15];
    };
  }

  function axis(scale, unit, side) {
    var muted = color('--muted');
    var grid = color('--grid');
    return {
      scale: scale,
      side: side,
      stroke: muted,
      size: 62,
      gap: 4,
      font: '11px system-ui, sans-serif',
      grid: { show: side === 3, stroke: grid, width: 1 },
      ticks: { show: false },
      values: function (u, splits) { return splits.map(function (v) { return fmt(v, unit); }); }
    };
  }

  function makeChart(spec, host) {
    var box = el('article', 'chart');
    box.id = 'chart-' + spec.id;
    var h = el('h3', null, spec.title);
    var note = el('span', 'note');
    h.appendChild(note);
    var readout = el('div', 'readout');
    readout.setAttribute('aria-live', 'off');
    var cells = spec.series.map(function (s, i) {
      var item = el('span');
      item.appendChild(el('span', 'swatch sw-' + (i + 1)));
      item.appendChild(document.createTextNode(s[1] + ' '));
      var b = el('b', null, '–');
      item.appendChild(b);
      readout.appendChild(item);
      return b;
    });
    var plot = el('div', 'plot');
    box.appendChild(h);
    box.appendChild(readout);
    box.appendChild(plot);
    host.appendChild(box);

    var chart = { spec: spec, note: note, cells: cells, plot: plot, u: null, hover: null };
    if (typeof uPlot !== 'function') {
      note.textContent = '(charting library failed to load)';
      return chart;
    }
    var hasY2 = spec.series.some(function (s) { return s[3] === 'y2'; });
    var unitOf = function (scale) {
      var s = spec.series.filter(function (x) { return x[3] === scale; })[0];
      return s ? s[2] : 'count';
    };
    var scales = { x: { time: true }, y: { range: range(spec.fixed, unitOf('y')) } };
    var axes = [
      { stroke: color('--muted'), font: '11px system-ui, sans-serif', grid: { stroke: color('--grid'), width: 1 },
        ticks: { show: false }, size: 24, space: 64,
        values: function (u, splits) { return splits.map(function (t) { return clock(t * 1000); }); } },
      axis('y', unitOf('y'), 3)
    ];
    if (hasY2) {
      scales.y2 = { range: range(null, unitOf('y2')) };
      axes.push(axis('y2', unitOf('y2'), 1));
    }
    var series = [{}].concat(spec.series.map(function (s, i) {
      var c = color(COLORS[i]);
      return { label: s[1], scale: s[3], stroke: c, width: 1.5, fill: i === 0 ? c + '1a' : undefined, points: { show: false } };
    }));
    chart.u = new uPlot({
      width: Math.max(200, plot.clientWidth),
      height: 150,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: scales,
      axes: axes,
      series: series,
      hooks: {
        setCursor: [function (u) {
          chart.hover = u.cursor.idx === null || u.cursor.idx === undefined ? null : u.cursor.idx;
          readOut(chart);
        }]
      }
    }, columns(spec), plot);
    return chart;
  }

  function columns(spec) {
    return [data.ts].concat(spec.series.map(function (s) { return data.cols[s[0]]; }));
  }

  // The readout shows the latest values, or those under the cursor.
  function readOut(chart) {
    var i = chart.hover !== null ? chart.hover : data.ts.length - 1;
    chart.spec.series.forEach(function (s, n) {
      chart.cells[n].textContent = i >= 0 ? fmt(data.cols[s[0]][i], s[2]) : '–';
    });
  }

  var drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    var run = function () {
      drawPending = false;
      charts.forEach(function (c) {
        if (c.u) c.u.setData(columns(c.spec));
        readOut(c);
      });
      var db = charts.filter(function (c) { return c.spec.id === 'db'; })[0];
      if (db) db.note.textContent = last && last.db === null ? '(storage off)' : '';
    };
    // Animation frames stop in hidden tabs; draw on a timer there instead.
    if (document.hidden) setTimeout(run, 0);
    else requestAnimationFrame(run);
  }

  // ---- gauges, alerts, models, log ---------------------------------------------

  var gaugeEls = {};
  function makeGauges() {
    var host = $('gauges');
    GAUGES.forEach(function (g) {
      var li = el('li', 'gauge state-none');
      li.id = 'gauge-' + g.key;
      var label = el('span', 'label', g.label);
      var value = el('span', 'value');
      var reading = document.createTextNode('–');
      value.appendChild(reading);
      var detail = el('span', 'detail');
      var state = el('span', 'state', 'no rule');
      li.appendChild(label);
      li.appendChild(value);
      value.appendChild(detail);
      li.appendChild(state);
      host.appendChild(li);
      gaugeEls[g.key] = { li: li, reading: reading, detail: detail, state: state };
    });
  }

  function renderGauges(s) {
    var states = (s && s.gauges) || {};
    GAUGES.forEach(function (g) {
      var e = gaugeEls[g.key];
      var v = s ? val(g.get(s)) : null;
      var st = Object.prototype.hasOwnProperty.call(STATE_TEXT, states[g.key]) ? states[g.key] : 'none';
      var text = fmt(v, g.unit);
      if (g.key === 'queue' && s && s.queue && val(s.queue.saturation_percent) !== null) {
        e.detail.textContent = num(s.queue.saturation_percent) + ' % full';
      }
      e.reading.textContent = text;
      e.state.textContent = st === 'none' ? 'no rule' : STATE_TEXT[st];
      e.li.className = 'gauge state-' + st;
      e.li.setAttribute('aria-label', g.label + ': ' + text + ', alert state ' + e.state.textContent);
    });
  }

  function renderAlerts() {
    var body = $('alerts').tBodies[0];
    var list = Array.from(active.values()).sort(function (a, b) {
      return (a.severity === 'critical' ? 0 : 1) - (b.severity === 'critical' ? 0 : 1) || (a.id || 0) - (b.id || 0);
    });
    var rows = list.map(function (a) {
      var tr = el('tr');
      tr.dataset.rule = a.rule;
      var sev = el('td');
      sev.appendChild(el('span', 'badge sev-' + (a.severity || 'warning'), a.severity || 'warning'));
      var rule = el('td', null, a.rule);
      if (a.description) rule.appendChild(el('span', 'desc', a.description));
      var value = el('td', 'num', fmtPlain(a.value) + ' / ' + fmtPlain(a.threshold));
      if (a.signal) value.appendChild(el('span', 'desc', a.signal));
      var since = el('td');
      var t = Date.parse(a.since);
      if (isFinite(t)) {
        var time = el('time', null, clock(t) + ' (' + ago(t) + ')');
        time.dateTime = a.since;
        since.appendChild(time);
      } else {
        since.textContent = '–';
      }
      tr.appendChild(sev);
      tr.appendChild(rule);
      tr.appendChild(value);
      tr.appendChild(since);
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    $('alerts').hidden = rows.length === 0;
    $('alerts-empty').hidden = rows.length !== 0;
    var count = $('alert-count');
    count.textContent = String(rows.length);
    count.className = rows.length ? 'count nonzero' : 'count';
  }

  function fmtPlain(v) {
    return typeof v === 'number' && isFinite(v) ? num(v) : '–';
  }

  function setAlerts(list) {
    active = new Map();
    (list || []).forEach(function (a) { active.set(a.id !== undefined ? a.id : a.rule, a); });
    renderAlerts();
  }

  function renderModels(models) {
    var body = $('models').tBodies[0];
    var rows = (models || []).map(function (m) {
      var tr = el('tr');
      tr.appendChild(el('td', null, m.name || '–'));
      var status = el('td');
      var st = m.status || (m.loaded ? 'ready' : 'not loaded');
      status.appendChild(el('span', 'badge st-' + st.replace(/[^a-z]/g, ''), st));
      tr.appendChild(status);
      tr.appendChild(el('td', 'num', m.device || '–'));
      tr.appendChild(el('td', 'num', fmt(val(m.weight_bytes), 'bytes')));
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    $('models').hidden = rows.length === 0;
    $('models-empty').hidden = rows.length !== 0;
  }

  function logLine(tsMs, level, message) {
    var log = $('log');
    var li = el('li');
    var t = el('time', null, clock(tsMs));
    t.dateTime = new Date(tsMs).toISOString();
    li.appendChild(t);
    li.appendChild(el('span', 'lvl lvl-' + level, level));
    li.appendChild(el('span', 'msg', message));
    log.insertBefore(li, log.firstChild);
    while (log.children.length > LOG_LINES) log.removeChild(log.lastChild);
  }

  // ---- the stream ------------------------------------------------------------

  function snapshot(s) {
    push(s);
    lastArrival = Date.now();
    renderGauges(s);
    setAlerts(s.alerts);
    renderModels(s.models);
    $('updated').textContent = typeof s.ts_ms === 'number' ? clock(s.ts_ms) : '–';
    scheduleDraw();
  }

  function onHello(h) {
    if (typeof h.interval_ms === 'number' && h.interval_ms > 0) intervalMs = h.interval_ms;
    // A (re)connect's history replaces what was drawn before.
    clear();
    var history = Array.isArray(h.history) ? h.history : [];
    history.forEach(push);
    // The server's recent log lines (oldest first) replace the log's.
    if (Array.isArray(h.events)) {
      $('log').replaceChildren();
      h.events.forEach(onLog);
    }
    logLine(Date.now(), 'info', 'connected to ' + STREAM + ' (' + history.length + ' snapshots of history)');
    lastArrival = Date.now();
    if (last) {
      $('updated').textContent = clock(last.ts_ms);
      renderGauges(last);
      setAlerts(last.alerts);
      renderModels(last.models);
    }
    scheduleDraw();
  }

  function onAlert(a) {
    events++;
    var raised = a.kind === 'raised';
    var at = Date.parse(a.at);
    var msg = 'alert ' + a.kind + ': ' + a.rule + ' (' + (a.severity || 'warning') + ') — ' +
      (a.signal || 'value') + ' ' + fmtPlain(a.value) + (raised ? ' past ' : ' back to ') + fmtPlain(a.threshold) +
      (a.reason ? ' (' + a.reason + ')' : '');
    logLine(isFinite(at) ? at : Date.now(), raised ? 'alert' : 'ok', msg);
    var key = a.alert_id !== undefined ? a.alert_id : a.rule;
    if (raised) {
      active.set(key, { id: a.alert_id, rule: a.rule, signal: a.signal, severity: a.severity,
        since: a.at, value: a.value, threshold: a.threshold });
    } else {
      active.delete(key);
      active.forEach(function (v, k) { if (v.rule === a.rule) active.delete(k); });
    }
    renderAlerts();
  }

  function onLog(l) {
    events++;
    var level = l.level === 'warn' || l.level === 'error' ? l.level : 'info';
    logLine(typeof l.ts_ms === 'number' ? l.ts_ms : Date.now(), level, String(l.message));
  }

  function handler(fn) {
    return function (e) {
      var body;
      try {
        body = JSON.parse(e.data);
      } catch (err) {
        console.warn('osprey dashboard: unreadable ' + e.type + ' event', err);
        return;
      }
      fn(body);
    };
  }

  var conn = 'connecting';
  function setConn(state, text) {
    conn = state;
    $('conn').className = 'conn conn-' + state;
    $('conn-text').textContent = text;
  }

  var source = null;
  var retryMs = 1000;
  var wasLive = false;
  function connect() {
    setConn('connecting', wasLive ? 'reconnecting…' : 'connecting…');
    source = new EventSource(STREAM);
    source.addEventListener('open', function () {
      retryMs = 1000;
      setConn('live', 'live');
      wasLive = true;
    });
    source.addEventListener('hello', handler(onHello));
    source.addEventListener('snapshot', handler(snapshot));
    source.addEventListener('alert', handler(onAlert));
    source.addEventListener('log', handler(onLog));
    source.addEventListener('error', function () {
      if (conn === 'live' || conn === 'stale') logLine(Date.now(), 'warn', 'connection lost; reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an error status): retry ourselves, backing off.
        source = null;
        setConn('offline', 'offline — retrying in ' + Math.round(retryMs / 1000) + ' s');
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      } else {
        setConn('connecting', 'reconnecting…');
      }
    });
  }

  // Live but silent for three intervals: say so.
  setInterval(function () {
    if (conn === 'live' && lastArrival && Date.now() - lastArrival > 3 * intervalMs) {
      setConn('stale', 'stale — no data for ' + Math.round((Date.now() - lastArrival) / 1000) + ' s');
    } else if (conn === 'stale' && Date.now() - lastArrival <= 3 * intervalMs) {
      setConn('live', 'live');
    }
  }, 1000);

  // ---- start -----------------------------------------------------------------

  makeGauges();
  var host = $('charts');
  charts = CHARTS.map(function (spec) { return makeChart(spec, host); });
  if (typeof ResizeObserver === 'function') {
    var ro = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var c = charts.filter(function (x) { return x.plot === entry.target; })[0];
        if (c && c.u) c.u.setSize({ width: Math.max(200, Math.floor(entry.contentRect.width)), height: 150 });
      });
    });
    charts.forEach(function (c) { ro.observe(c.plot); });
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) scheduleDraw();
  });
  renderAlerts();
  renderModels([]);

  // Read-only hooks for tests and the curious.
  window.__osprey = Object.freeze({
    points: function () { return received; },
    lastTs: function () { return last ? last.ts_ms : 0; },
    series: function (name) { return data.cols[name] ? data.cols[name].slice() : []; },
    alerts: function () { return Array.from(active.values()).map(function (a) { return a.rule; }); },
    events: function () { return events; }
  });

  connect();
})();
