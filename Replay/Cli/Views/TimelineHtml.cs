using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Projections;
using Sva.Projections.Views;

namespace Sva.Replay.Views;

/// <summary>
/// One self-contained page: a lane per (device, PASID) with binding intervals and marks; hovering shows
/// the event; a slider moves the time-travel point and shows the state tables computed by the simulator
/// (every seq for small sessions, evenly spaced points for large ones: the page never re-implements the fold).
/// Each state cell carries the seq that set its row (<see cref="Sva.Projections.Queries.Blame.Annotate"/>); a click moves the slider there.
/// </summary>
public static class TimelineHtml
{
    /// <summary>The page for seqs [from, to] of a session (<see cref="TimelineModel"/>: detail or aggregated).</summary>
    public static async Task<string> RenderAsync(Sva.EventStore.IEventStore store, Sva.EventStore.SessionInfo info, long from, long to, int detailLimit, CancellationToken ct,
        bool useSnapshots = true, Action<long>? started = null)
    {
        var data = await TimelineModel.BuildAsync(store, info, from, to, detailLimit, ct, useSnapshots, started);
        // </script> cannot appear inside the JSON: escape every '<'.
        var json = data.ToJsonString().Replace("<", "\\u003c");
        return Template.Replace("/*DATA*/null", json).Replace("{{TITLE}}", System.Net.WebUtility.HtmlEncode($"sva timeline: {info.Id}"));
    }

    private const string Template = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{{TITLE}}</title>
        <style>
        body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
        h1{font-size:16px;margin:0 0 8px} .muted{color:#666}
        #lanes{border:1px solid #ccc;overflow-x:auto;position:relative}
        svg text{font:11px monospace} .bind{fill:#4a90d9;opacity:.85} .bind.open{fill:#2e7d32}
        .mark{stroke:#000;stroke-width:.5} .response{fill:#43a047} .response.INVALID{fill:#fb8c00} .response.FAILURE{fill:#e53935}
        .withheld{fill:#8e24aa} .queued{fill:#bdbdbd} .invalidate{fill:#00acc1} .exit{fill:#6d4c41} .drop{fill:#000}
        .dma-fault{fill:#d81b60} .observed{fill:#fdd835}
        #cursor{stroke:#d32f2f;stroke-width:1.5}
        #tip{position:fixed;display:none;background:#fffde7;border:1px solid #999;padding:6px;max-width:520px;white-space:pre-wrap;font:11px monospace;pointer-events:none;z-index:9}
        #controls{margin:10px 0} #slider{width:100%}
        table{border-collapse:collapse;margin:4px 16px 12px 0;display:inline-table;vertical-align:top}
        th,td{border:1px solid #ddd;padding:2px 6px;font:12px monospace;text-align:left} th{background:#f5f5f5}
        #applied{font:12px monospace;background:#f5f5f5;padding:6px;white-space:pre-wrap}
        td.blame{cursor:pointer} td.blame:hover{background:#e3f2fd}
        </style></head><body>
        <h1 id="title"></h1><div class="muted" id="legend"></div>
        <div id="lanes"></div>
        <div id="controls"><input id="slider" type="range" min="0" step="1"><div>seq <b id="seqlabel"></b> <span class="muted" id="snap"></span></div></div>
        <div id="applied"></div>
        <div id="tables"></div>
        <div id="tip"></div>
        <script id="sva-data" type="application/json">/*DATA*/null</script>
        <script>
        "use strict";
        const D = JSON.parse(document.getElementById('sva-data').textContent);
        const NS = 'http://www.w3.org/2000/svg';
        const el = (tag, attrs, parent) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
        const tip = document.getElementById('tip');
        const eventAt = seq => D.events[seq - D.from];
        const show = (ev, text) => { tip.textContent = text; tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px'; };
        const hide = () => { tip.style.display = 'none'; };
        const describe = seq => { const e = eventAt(seq); return e ? `seq ${e.seq}  ${e.type}${e.source ? '  (' + e.source + ')' : ''}\n${JSON.stringify(e.data, null, 1)}` : ''; };
        document.getElementById('title').textContent = `session ${D.session} — kernel ${D.kernel} — ${D.last_seq} events` + (D.from > 1 || D.to < D.last_seq ? `, seqs ${D.from}..${D.to} shown` : '') + `, ${D.lanes.length} lanes`
          + (D.mode === 'coarse' ? ` — aggregated: ${Math.round(D.bucket_width)} seqs per column (more than ${D.detail_limit} events; cut a window with sva timeline --from/--to for each event)` : '');
        document.getElementById('legend').textContent = 'bars: bindings (green: still bound); marks: page responses (green SUCCESS, orange INVALID, red FAILURE), grey queued, cyan invalidation, brown exit, black drop, pink DMA fault, yellow observed';
        const first = D.from - 1, last = D.to, span = Math.max(last - first, 1);
        const left = 210, laneH = 26, width = Math.max(900, Math.min(4000, span * 6));
        const x = seq => left + (width - left - 10) * (seq - first) / span;
        const svg = el('svg', { width, height: D.lanes.length * laneH + 30, id: 'svg' }, document.getElementById('lanes'));
        D.lanes.forEach((lane, i) => {
          const y = 20 + i * laneH;
          const label = el('text', { x: 4, y: y + 15, class: 'lane-label' }, svg); label.textContent = `${lane.device} pasid ${lane.pasid}`;
          (lane.intervals || []).forEach(b => {
            const to = b.to ?? D.last_seq;
            const r = el('rect', { x: x(b.from), y: y + 4, width: Math.max(x(to) - x(b.from), 2), height: laneH - 10, class: 'bind' + (b.to == null ? ' open' : '') }, svg);
            r.addEventListener('mousemove', ev => show(ev, `${b.handle}: mm ${b.mm}, domain ${b.domain ?? '-'}\nbound at seq ${b.from}${b.from_source ? ' (' + b.from_source + ')' : ''}\n${b.to == null ? 'still bound' : 'unbound at seq ' + b.to + (b.to_source ? ' (' + b.to_source + ')' : '')}\n\n${describe(b.from)}`));
            r.addEventListener('mouseleave', hide);
          });
          if (D.mode === 'coarse') {
            // Aggregated: one path per lane for its spans and one per (lane, kind) for its counts, so that the page
            // stays light with thousands of lanes; the tooltip looks up the column under the pointer.
            const paths = {};
            const add = (cls, d) => { paths[cls] = (paths[cls] || '') + d; };
            lane.spans.forEach(([from, to]) => add('bind' + (to == null ? ' open' : ''), `M${x(from).toFixed(1)} ${y + 4}h${Math.max(x(to ?? last) - x(from), 2).toFixed(1)}v${laneH - 10}h${-Math.max(x(to ?? last) - x(from), 2).toFixed(1)}z`));
            lane.counts.forEach(([bucket, kind, label, n]) => {
              const cx = x(D.from + (bucket + 0.5) * D.bucket_width), r = Math.min(3 + Math.log2(n), 9);
              add(`mark ${kind} ${label}`, `M${(cx - r).toFixed(1)} ${y + laneH / 2 - 1}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0`);
            });
            for (const cls in paths) el('path', { d: paths[cls], class: cls }, svg);
          }
          (lane.marks || []).forEach(m => {
            const c = el('circle', { cx: x(m.seq), cy: y + laneH / 2 - 1, r: 4, class: `mark ${m.kind} ${m.label}` }, svg);
            c.addEventListener('mousemove', ev => show(ev, `${m.label}: ${m.detail}\n\n${describe(m.seq)}`));
            c.addEventListener('mouseleave', hide);
          });
        });
        if (D.mode === 'coarse') {
          svg.addEventListener('mousemove', ev => {
            const box = svg.getBoundingClientRect(), px = ev.clientX - box.left, py = ev.clientY - box.top;
            const lane = D.lanes[Math.floor((py - 20) / laneH)];
            if (!lane || px < left) { hide(); return; }
            const seq = first + (px - left) / (width - left - 10) * span, bucket = Math.floor((seq - D.from) / D.bucket_width);
            const a = Math.round(D.from + bucket * D.bucket_width), b = Math.min(D.to, Math.round(D.from + (bucket + 1) * D.bucket_width) - 1);
            const counts = lane.counts.filter(c => c[0] === bucket).map(([, kind, label, n]) => `${n} × ${kind} ${label}`);
            const spans = lane.spans.filter(([f, t]) => f <= b && (t ?? last) >= a).map(([f, t, n]) => `${n} binding${n === 1 ? '' : 's'} in seqs ${f}..${t ?? 'still bound'}`);
            show(ev, `${lane.device} pasid ${lane.pasid}, seqs ${a}..${b}\n${spans.concat(counts).join('\n') || 'nothing'}`);
          });
          svg.addEventListener('mouseleave', hide);
        }
        const cursor = el('line', { id: 'cursor', x1: x(0), x2: x(0), y1: 0, y2: D.lanes.length * laneH + 30 }, svg);
        const points = Object.keys(D.states).map(Number).sort((a, b) => a - b);
        const slider = document.getElementById('slider');
        slider.min = first; slider.max = last;
        const table = (title, cols, rows) => {
          const t = document.createElement('table'); const cap = t.createCaption(); cap.textContent = title;
          const h = t.insertRow(); cols.forEach(c => { const th = document.createElement('th'); th.textContent = c; h.appendChild(th); });
          // a cell is a value or [value, set_at]: the row's provenance; a click moves the slider to the seq that set it
          rows.forEach(r => { const tr = t.insertRow(); r.forEach(c => {
            const [v, at, row] = Array.isArray(c) ? c : [c, null, null];
            const td = tr.insertCell(); td.textContent = v == null ? '-' : String(v);
            if (at && at.seq != null) {
              td.className = 'blame'; td.setAttribute('data-set-at', at.seq); td.setAttribute('data-row', row); td.title = `${row}: set at seq ${at.seq}, click to go there`;
              td.addEventListener('click', () => { slider.value = at.seq; moveTo(at.seq); });
            }
          }); });
          return t;
        };
        const at = (o, row, key) => v => [v, o[key || 'set_at'], row];
        function moveTo(seq) {
          let p = points[0]; for (const q of points) if (q <= seq) p = q;
          const s = D.states[String(p)];
          document.getElementById('seqlabel').textContent = p;
          document.getElementById('snap').textContent = p === seq ? '' : `(nearest recorded point at or below ${seq})`;
          cursor.setAttribute('x1', x(p)); cursor.setAttribute('x2', x(p));
          document.getElementById('applied').textContent = p > 0 ? (D.mode === 'detail' && p >= D.from ? 'event just applied: ' + describe(p) : `state after seq ${p}`) : 'before the first event';
          const tables = document.getElementById('tables'); tables.replaceChildren();
          tables.appendChild(table('devices and PASID tables', ['device', 'max_pasids', 'pending', 'pasid', 'domain', 'mm', 'mode'],
            s.devices.flatMap(d => { const dv = at(d, `device:${d.id}`), pd = at(d, `pending:${d.id}`, 'pending_set_at');
              return d.pasids.length ? d.pasids.map(p => [dv(d.id), dv(d.max_pasids), pd(d.pending_page_requests)].concat([p.pasid, p.domain, p.mm, p.mode].map(at(p, `pasid-entry:${d.id}/${p.pasid}`))))
                : [[dv(d.id), dv(d.max_pasids), pd(d.pending_page_requests), null, null, null, null]]; })));
          tables.appendChild(table('mms', ['mm', 'pasid', 'state', 'mm_users', 'mm_count'], s.mms.map(m => [m.id, m.pasid, m.state, m.mm_users, m.mm_count].map(at(m, `mm:${m.id}`)))));
          tables.appendChild(table('domains', ['domain', 'type', 'mm', 'users', 'attached'], s.domains.map(d => [d.id, d.type, d.mm, d.users, d.attached.join(' ')].map(at(d, `domain:${d.id}`)))));
          tables.appendChild(table('handles', ['handle', 'device', 'mm', 'domain', 'pasid', 'users'], s.handles.map(h => [h.id, h.device, h.mm, h.domain, h.pasid, h.users].map(at(h, `handle:${h.id}`)))));
          tables.appendChild(table('PASID allocator', ['pasid', 'mm'], (s.pasid_allocator || []).map(p => [p.pasid, p.mm].map(at(p, `pasid:${p.pasid}`)))));
        }
        slider.addEventListener('input', () => moveTo(Number(slider.value)));
        const start = Math.min(last, Math.max(first, Number(new URLSearchParams(location.search).get('seq') ?? last)));
        slider.value = start; moveTo(start);
        // ?follow=ROW (mm:job2, handle:H1, pasid-entry:0000:00:03.0/1, ...): click that row's cell, as a link to the seq that set it
        const follow = new URLSearchParams(location.search).get('follow');
        if (follow) { const td = [...document.querySelectorAll('td.blame')].find(c => c.getAttribute('data-row') === follow); if (td) td.click(); }
        document.body.setAttribute('data-render-ms', String(Math.round(performance.now())));
        document.body.setAttribute('data-ready', 'yes');
        </script></body></html>
        """;
}
