"""The dashboard's CSS and its one small script (live refresh of <main>, every 5 s while
the tab is visible: each refresh renders the page again, so a hidden tab asks for nothing).

Colours meet WCAG 2.1 AA (4.5:1 for text, white on every cell colour included;
tests/report/test_pages_a11y.py computes the ratios); every class is told by its label or
pattern as well as its colour. Layout works down to 360 px: tables scroll inside their own
box, SVGs scale to the width (viewBox, width 100%).
"""

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1f1f1f;background:#fafafa}
header{background:#1a237e;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline}
header a{color:#fff}header a.home{font-weight:bold;text-decoration:none}.sub{color:#e8eaf6}
header nav{display:flex;gap:12px;margin-left:auto}.live{font-size:13px;color:#e8eaf6}.live.stale{color:#ffd180}
main{padding:8px 16px;max-width:1100px}h1{font-size:22px;overflow-wrap:anywhere}h2{font-size:17px;margin-top:22px}
a{color:#1a4fb0}.muted,.state{color:#595959}.state{font-size:13px}
.banner{background:#fff3e0;border:1px solid #b35c00;padding:8px;color:#1f1f1f}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.grid td.cell{text-align:center;color:#fff;font-weight:600;min-width:72px}.grid td.cell a{color:#fff}
.cell.ok{background:#2e7d32}.cell.dns{background:#c62828}.cell.tcp{background:#ad1457}.cell.tls{background:#b23c00}
.cell.http{background:#6a1b9a}.cell.quic{background:#00695c}.cell.throttled{background:#6a1b9a;
background-image:repeating-linear-gradient(45deg,transparent 0 6px,rgba(255,255,255,.18) 6px 9px)}
.cell.down{background:#455a64}.cell.outage{background:#263238}.cell.unknown,.cell.none{background:#e0e0e0;color:#3d3d3d}
.cell small{display:block;font-weight:normal}
td.cell:focus-within,a:focus{outline:3px solid #ffab00;outline-offset:1px}
ul.incidents{padding-left:18px}li.incident p{margin:2px 0 10px}
svg.timeline{display:block;width:100%;height:auto;margin:6px 0;background:#fff;border:1px solid #e0e0e0}
.tl-title{font-weight:bold;font-size:13px}.tl-net,.tl-axis{font-size:11px;fill:#333}
.tl-mark{font-size:11px;fill:#b00020;font-weight:bold}.tl-change{font-size:10px;fill:#000}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px;padding:0;list-style:none}
.legend svg{vertical-align:middle;margin-right:4px}
blockquote{font-size:16px;border-left:4px solid #1a237e;margin:8px 0;padding:6px 12px;background:#fff}
dl.facts{display:grid;grid-template-columns:minmax(90px,130px) 1fr;gap:2px 10px}dt{font-weight:bold}
dd{margin:0;overflow-wrap:anywhere}dd.works{color:#2e7d32}dd.blocked{color:#c62828}
#chart{width:100%;height:auto;background:#fff}
ul.uids{font:12px monospace;columns:2 22em;padding-left:18px}ul.uids li{overflow-wrap:anywhere}
form.filters{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:end;margin:8px 0}
form.filters label{display:flex;flex-direction:column;font-size:13px}
textarea.embed{width:100%;font:12px monospace}
.ok-text{color:#2e7d32}.fail-text{color:#b00020}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
code,pre{overflow-wrap:anywhere;white-space:pre-wrap}td.rules code{white-space:nowrap;overflow-wrap:normal}
"""

JS = """
(function(){
  var every = parseInt(document.body.dataset.refresh || '0', 10) * 1000;
  var live = document.getElementById('live');
  var said = live ? live.textContent : '';
  if (!every) return;
  function incidentIds(root){
    return Array.prototype.map.call(root.querySelectorAll('li.incident[data-id]'), function(li){ return li.dataset.id; });
  }
  function tick(){
    if (document.hidden) return;  /* a tab nobody sees reads nothing; it catches up when shown */
    var url = location.pathname + (location.search ? location.search + '&' : '?') + 'fragment=1';
    fetch(url, {cache: 'no-store'}).then(function(r){
      if (!r.ok) throw new Error(r.status);
      return r.text().then(function(t){ return [r.headers.get('x-content-hash'), r.headers.get('x-live'), t]; });
    }).then(function(got){
      var main = document.getElementById('main');
      document.body.dataset.checks = String(parseInt(document.body.dataset.checks || '0', 10) + 1);
      if (live) { live.textContent = got[1] || said; live.className = /^data as of/.test(live.textContent) ? 'live stale' : 'live'; }
      if (got[0] && got[0] === main.dataset.hash) return;  /* nothing new: touch nothing */
      var before = incidentIds(main);
      var active = document.activeElement;
      var key = active && main.contains(active) ? (active.dataset.key || (active.closest('[data-key]') || {}).dataset) : null;
      if (key && typeof key !== 'string') key = key.key;
      main.innerHTML = got[2];
      main.dataset.hash = got[0] || '';
      if (key) {
        var again = main.querySelector('[data-key="' + key.replace(/"/g, '') + '"]');
        var target = again && (again.matches('a,[tabindex]') ? again : again.querySelector('a,[tabindex]'));
        if (target) target.focus();
      }
      var fresh = incidentIds(main).filter(function(id){ return before.indexOf(id) < 0; });
      var announce = document.getElementById('announce');
      if (announce && fresh.length) {
        announce.textContent = fresh.length + ' new incident' + (fresh.length > 1 ? 's' : '') + ': ' +
          fresh.map(function(id){ var a = main.querySelector('li.incident[data-id="' + id + '"] a'); return a ? a.textContent : id; }).join('; ');
      }
      document.body.dataset.updates = String(parseInt(document.body.dataset.updates || '0', 10) + 1);
    }).catch(function(){ if (live) { live.textContent = 'reconnecting...'; live.className = 'live stale'; } });
  }
  setInterval(tick, every);
  document.addEventListener('visibilitychange', function(){ if (!document.hidden) tick(); });
})();
"""
