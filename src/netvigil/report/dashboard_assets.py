"""The dashboard's CSS and its one small script (live refresh of <main>)."""

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1a237e;color:#fff;padding:8px 16px}header a{color:#fff;font-weight:bold;text-decoration:none}
.sub{opacity:.8;margin-left:8px}.live{float:right;font-size:12px;opacity:.8}.live.stale{color:#ffab91}
main{padding:8px 16px;max-width:1100px}h1{font-size:22px}h2{font-size:17px;margin-top:22px}
.muted{color:#777}.banner{background:#fff3e0;border:1px solid #ffb74d;padding:8px}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}
.grid td.cell{text-align:center;color:#fff;font-weight:600;min-width:80px}.grid td.cell a{color:#fff}
.cell.ok{background:#2e7d32}.cell.dns{background:#c62828}.cell.tcp{background:#ad1457}.cell.tls{background:#d84315}
.cell.http{background:#6a1b9a}.cell.quic{background:#ef6c00}.cell.throttled{background:#7b1fa2}
.cell.down{background:#546e7a}.cell.outage{background:#37474f}.cell.unknown,.cell.none{background:#e0e0e0;color:#555}
ul.incidents{padding-left:18px}li.incident p{margin:2px 0 10px}.state{font-size:12px;color:#777}
svg.timeline{display:block;margin:6px 0;background:#fff;border:1px solid #eee}
.tl-title{font-weight:bold;font-size:13px}.tl-net,.tl-axis{font-size:11px;fill:#444}
.tl-mark{font-size:11px;fill:#b00020;font-weight:bold}
blockquote{font-size:16px;border-left:4px solid #1a237e;margin:8px 0;padding:6px 12px;background:#fff}
dl.facts{display:grid;grid-template-columns:130px 1fr;gap:2px 10px}dt{font-weight:bold}
dd{margin:0}dd.works{color:#2e7d32}dd.blocked{color:#c62828}#chart{max-width:100%;background:#fff}
ul.uids{font:12px monospace;columns:2}
"""

JS = """
(function(){
  var every = parseInt(document.body.dataset.refresh || '0', 10) * 1000;
  var live = document.getElementById('live');
  var last = null;
  if (!every) return;
  function tick(){
    var url = location.pathname + (location.search ? location.search + '&' : '?') + 'fragment=1';
    fetch(url, {cache: 'no-store'}).then(function(r){
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function(html){
      var main = document.getElementById('main');
      if (html !== last) main.innerHTML = html;
      last = html;
      live.textContent = 'live, updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
      live.className = 'live';
      document.body.dataset.updates = String(parseInt(document.body.dataset.updates || '0', 10) + 1);
    }).catch(function(){ live.textContent = 'reconnecting...'; live.className = 'live stale'; });
  }
  setInterval(tick, every);
})();
"""
