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
  table.events { table-layout: fixed; }
  table.events col.number { width: 36px; }
  table.events col.occurred { width: 130px; }
  table.events col.event { width: 270px; }
  table.events col.after { width: 110px; }
  table.events col.hash { width: 100px; }
  dl.data { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 10px;
            margin: 0; font: 12px/1.4 ui-monospace, monospace; }
  dl.data dt { color: #52606d; }
  dl.data dd { margin: 0; overflow-wrap: break-word; }
  code.value { font: 12px/1.4 ui-monospace, monospace; overflow-wrap: break-word; }
  .word { display: inline-block; max-width: 100%; overflow-wrap: anywhere; }
  .actor { font-size: 12px; }
  .actor .word { font: 11px/1.45 ui-monospace, monospace; }  /* an id: one width a letter */
  .number { color: #7b8794; }
  .type { font-weight: 600; }
  .alert { color: #b91c1c; font-weight: 600; }
  .good { color: #166534; }
  .findings { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 4px 32px; }
  .findings h3 { font-size: 15px; margin: 12px 0 4px; }
  .findings .figures { margin: 0 0 6px; }
  .findings .figures b { font-size: 16px; }
  .hash { font-family: ui-monospace, monospace; font-size: 12px; color: #52606d; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 6px; vertical-align: -1px; border: 1px solid #c8ccd2; }
  .chart { max-width: 100%; height: auto; background: #fff; border: 1px solid #e4e7eb; }
  .chart .axis { font-size: 11px; fill: #52606d; }
  .chart .stage-label { font-size: 11px; fill: #5b21b6; }
  .chart .lane-label { font-size: 12px; font-weight: 600; }
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
<h2>Findings</h2>
<div class="findings">
<section>
<h3>Boundary violations</h3>
<p class="figures"><b id="violations-open">$violations_open</b> open,
<b id="violations-addressed">$violations_addressed</b> addressed</p>
$violations
</section>
<section>
<h3>Supervision recommendations</h3>
<p class="figures"><b id="recommendations">$recommendations</b> recommended</p>
$supervision
</section>
<section>
<h3>Homework: claimed and verified</h3>
<p class="figures"><b id="assigned">$assigned</b> assigned, <b id="claimed">$claimed</b> claimed
by the client: <b id="confirmed">$confirmed</b> confirmed, <b id="refuted">$refuted</b>
refuted, <b id="awaiting">$awaiting</b> awaiting verification</p>
$homework
</section>
<section>
<h3>Coach and client: how each rates the relationship</h3>
<p class="figures"><b id="wide-gaps">$wide_gaps</b> factor(s) rated 2 or more points apart
in the latest check-ins</p>
$gaps
</section>
</div>
<h2>Hash chains</h2>
<ul class="chains">$chains</ul>
<h2>Trust score and the relationship over time</h2>
<p class="muted">Above, the blue line is the trust score after each event; shaded bands are
stages and dashed lines mark stage changes. Below, on the same time axis, the client's ratings
of each of the six factors of the relationship (1 to 5) at each of their check-ins, a lane a
factor; the red zone is a low rating (2 or less), a red dotted line marks a concern raised on
that factor and a green one a concern resolved.</p>
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
<colgroup><col class="number"><col class="occurred"><col class="event"><col class="data">
<col class="after"><col class="hash"></colgroup>
<thead><tr><th>#</th><th>occurred</th><th>event</th><th>data</th><th>stage after</th>
<th>hash</th></tr></thead>
<tbody>$rows</tbody>
</table>
</body>
</html>
"""
)
