"""The page of `rapport audit report`: inline CSS, no script, no external resource."""

from string import Template

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rapport audit report — engagement $engagement_id</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933;
         margin: 24px auto; max-width: 1180px; padding: 0 16px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e4e7eb; padding-bottom: 4px; }
  .muted { color: #7b8794; }
  .summary { display: grid; grid-template-columns: repeat(5, max-content); gap: 4px 28px; }
  .summary b { display: block; font-size: 18px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; vertical-align: top; padding: 4px 8px;
           border-bottom: 1px solid #e4e7eb; }
  th { background: #f5f7fa; font-weight: 600; }
  pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 12px;
        max-width: 460px; }
  .type { font-weight: 600; }
  .hash { font-family: ui-monospace, monospace; font-size: 12px; color: #52606d; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 6px; vertical-align: -1px; border: 1px solid #c8ccd2; }
  .chart { max-width: 100%; height: auto; background: #fff; border: 1px solid #e4e7eb; }
  .chart .axis { font-size: 11px; fill: #52606d; }
  .chart .stage-label { font-size: 11px; fill: #5b21b6; }
  .chart .legend { font-size: 11px; fill: #1f2933; }
  .charts { display: flex; flex-direction: column; gap: 8px; }
  ul.chains { margin: 4px 0; padding-left: 18px; }
</style>
</head>
<body>
<h1>Engagement $engagement_id</h1>
<p class="muted">Rapport audit report, folded from the event log as of $as_of.</p>
<div class="summary">
  <div>stage<b id="stage">$stage</b></div>
  <div>trust score<b id="score">$score</b></div>
  <div>relationship health<b id="health">$health</b></div>
  <div>open relationship concerns<b id="concerns">$concerns</b></div>
  <div>events<b>$events</b></div>
</div>
<h2>Hash chains</h2>
<ul class="chains">$chains</ul>
<h2>Trust score and the relationship over time</h2>
<p class="muted">Above, the blue line is the trust score after each event; shaded bands are
stages and dashed lines mark stage changes. Below, on the same time axis, the client's ratings
of the six factors of the relationship (1 to 5) at each of their check-ins; the red zone is a
low rating (2 or less), red dotted lines mark concerns raised and green ones concerns resolved.
</p>
<div class="charts">
$chart
$factors_chart
</div>
<h2>Stage timeline</h2>
$stages
<h2>Events in order</h2>
<p class="muted">Personal fields are shown only where the client's key still exists; otherwise
they read "erased".</p>
<table class="events">
<thead><tr><th>#</th><th>service</th><th>version</th><th>occurred</th><th>event</th>
<th>actor</th><th>data</th><th>stage after</th><th>trust after</th><th>hash</th></tr></thead>
<tbody>$rows</tbody>
</table>
</body>
</html>
"""
)
