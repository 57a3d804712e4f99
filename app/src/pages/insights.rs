//! Insights: the four delivery figures of each environment (deployments per
//! week, change failure rate, lead time, time to restore), exact from the
//! audit log, with their weekly trend drawn as SVG on the server (readable
//! without JavaScript) and the numbers in a table beside each chart. Each
//! week links to the deployments behind it in the audit log.

use envline_api::{Insights, InsightsWeek, span_text};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::insights::get_insights;
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;
use crate::resource::load;

const INPUT: &str =
    "mt-1 block w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm";

/// The windows the filter offers: (value of `since`, label).
const WINDOWS: &[(&str, &str)] = &[
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("26w", "6 months"),
    ("52w", "a year"),
];

/// The Insights page.
#[component]
pub fn InsightsPage() -> impl IntoView {
    let changes = use_changes();
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|q| {
            let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
            (text("environment"), text("since"))
        })
    });
    let data = load(
        move || (changes.get(), query.get()),
        |(_, (environment, since))| get_insights(environment, since),
    );
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Insights"</h1>
            <p class="text-sm text-slate-600">
                "Delivery figures per environment, computed exactly from the audit log: nothing is guessed from timestamps of unrelated systems."
            </p>
            <Definitions/>
        </div>
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading the log…"</p> }>
            {move || Suspend::new(async move {
                let (environment, since) = query.get_untracked();
                match data.await {
                    Ok(page) => view! {
                        <Filters environments=page.environments.clone() environment since/>
                        <div class="grid gap-6">
                            {page.figures.into_iter().map(|figures| view! { <EnvironmentFigures figures/> }).collect_view()}
                        </div>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What each figure means, as the README defines it.
#[component]
fn Definitions() -> impl IntoView {
    view! {
        <details class="mt-2 text-sm text-slate-700">
            <summary class="cursor-pointer text-indigo-700 underline">"How these are counted"</summary>
            <ul class="mt-2 list-disc space-y-1 pl-5">
                <li><strong>"Deployment"</strong>": a promotion or cherry-pick that landed in the environment. Rollbacks, resets, realignments and hotfix resets are not deployments."</li>
                <li><strong>"Failed deployment"</strong>": the environment was later rolled back from it, reset away from it by hotfix mode, or its commit failed a test there."</li>
                <li><strong>"Change failure rate"</strong>": failed deployments divided by deployments."</li>
                <li><strong>"Lead time"</strong>": for every commit a deployment brought into the environment for the first time (not only the tip), from the commit's committer time to the deployment; median and 90th percentile."</li>
                <li><strong>"Time to restore"</strong>": from a failure (the rollback, the hotfix reset or the failed test) to the next deployment into that environment; median."</li>
            </ul>
        </details>
    }
}

/// The filter form: a plain GET form, so each view is an address.
#[component]
fn Filters(
    environments: Vec<String>,
    environment: Option<String>,
    since: Option<String>,
) -> impl IntoView {
    let chosen = environment.unwrap_or_default();
    let window = since.unwrap_or_else(|| "30d".into());
    view! {
        <form method="get" action="/insights" class="mb-4 flex flex-wrap items-end gap-3 rounded-md border border-slate-200 bg-white p-4" aria-label="Choose the figures">
            <label class="block text-sm font-medium text-slate-800">
                "Environment"
                <select name="environment" class=INPUT>
                    <option value="">"every environment"</option>
                    {environments.into_iter().map(|e| {
                        let selected = e == chosen;
                        view! { <option value=e.clone() selected=selected>{e.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Window"
                <select name="since" class=INPUT>
                    {WINDOWS.iter().map(|(value, label)| {
                        let selected = *value == window;
                        view! { <option value=*value selected=selected>{format!("the last {label}")}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" class="rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-800 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2">"Show"</button>
        </form>
    }
}

/// One environment: its four figures and their trends.
#[component]
fn EnvironmentFigures(figures: Insights) -> impl IntoView {
    let env = figures.environment.clone();
    let heading = format!("figures-{env}");
    let labelled_by = heading.clone();
    let dash = || "–".to_string();
    let rate = figures
        .change_failure_rate
        .map(|r| format!("{:.0}%", r * 100.0))
        .unwrap_or_else(dash);
    let lead = &figures.lead_time_seconds;
    let restore = &figures.time_to_restore_seconds;
    let tiles = [
        (
            "Deployments per week",
            format!("{:.1}", figures.deployments_per_week),
            format!("{} deployments", figures.deployments),
        ),
        (
            "Change failure rate",
            rate,
            format!(
                "{} of {} failed",
                figures.failed_deployments, figures.deployments
            ),
        ),
        (
            "Lead time (median)",
            lead.median.map(span_text).unwrap_or_else(dash),
            format!(
                "p90 {} · {} commits",
                lead.p90.map(span_text).unwrap_or_else(dash),
                lead.commits
            ),
        ),
        (
            "Time to restore (median)",
            restore.median.map(span_text).unwrap_or_else(dash),
            format!(
                "{} of {} failures restored",
                restore.restored, restore.failures
            ),
        ),
    ];
    let weeks = figures.series.clone();
    let charts: [(&str, Measure); 4] = [
        ("Deployments", Measure::Deployments),
        ("Change failure rate", Measure::FailureRate),
        ("Lead time, median", Measure::LeadTime),
        ("Time to restore, median", Measure::Restore),
    ];
    view! {
        <section class="rounded-md border border-slate-200 bg-white p-4" aria-labelledby=labelled_by data-testid=format!("insights-{env}")>
            <h2 id=heading class="text-lg font-semibold text-slate-900">
                <a href=format!("/env/{env}") class="hover:underline">{env.clone()}</a>
            </h2>
            <dl class="mt-3 grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
                {tiles.into_iter().map(|(label, value, note)| view! {
                    <div class="min-w-0 rounded-md bg-slate-50 p-3">
                        <dt class="text-xs font-medium uppercase tracking-wide text-slate-600">{label}</dt>
                        <dd class="mt-1 text-2xl font-semibold text-slate-900">{value}</dd>
                        <dd class="text-xs text-slate-600">{note}</dd>
                    </div>
                }).collect_view()}
            </dl>
            <div class="mt-4 grid gap-4 md:grid-cols-2">
                {charts.into_iter().map(|(title, measure)| view! {
                    <Trend env=env.clone() title weeks=weeks.clone() measure/>
                }).collect_view()}
            </div>
        </section>
    }
}

/// Which weekly figure a chart draws.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Deployments,
    FailureRate,
    LeadTime,
    Restore,
}

impl Measure {
    /// The week's value, in the chart's unit; `None` where there is none.
    fn of(self, w: &InsightsWeek) -> Option<f64> {
        match self {
            Measure::Deployments => Some(w.deployments as f64),
            Measure::FailureRate => w.change_failure_rate,
            Measure::LeadTime => w.lead_time_median_seconds.map(|s| s as f64),
            Measure::Restore => w.time_to_restore_median_seconds.map(|s| s as f64),
        }
    }

    /// A value as people read it.
    fn text(self, value: Option<f64>) -> String {
        match (self, value) {
            (_, None) => "–".into(),
            (Measure::Deployments, Some(v)) => format!("{v:.0}"),
            (Measure::FailureRate, Some(v)) => format!("{:.0}%", v * 100.0),
            (_, Some(v)) => span_text(v as i64),
        }
    }
}

/// Chart size in SVG units (the SVG scales to its box).
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 120.0;
const TOP: f64 = 6.0;
const BOTTOM: f64 = 5.0;

/// One figure's weeks: bars for deployments, a line for the others, each
/// week a link to its deployments in the audit log; the numbers in a table
/// beside it.
#[component]
fn Trend(
    env: String,
    title: &'static str,
    weeks: Vec<InsightsWeek>,
    measure: Measure,
) -> impl IntoView {
    let values: Vec<Option<f64>> = weeks.iter().map(|w| measure.of(w)).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let top = match measure {
        Measure::FailureRate => 1.0,
        _ if max > 0.0 => max,
        _ => 1.0,
    };
    let n = weeks.len().max(1) as f64;
    let step = WIDTH / n;
    let y = move |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v / top);
    let x = move |i: usize| step * (i as f64 + 0.5);
    let link = {
        let env = env.clone();
        move |w: &InsightsWeek| {
            let until = chrono::NaiveDate::parse_from_str(&w.week, "%Y-%m-%d")
                .map(|d| (d + chrono::TimeDelta::days(7)).to_string())
                .unwrap_or_default();
            format!(
                "/audit?environment={env}&action=promote&since={}&until={until}",
                w.week
            )
        }
    };
    let label =
        |w: &InsightsWeek, v: Option<f64>| format!("week of {}: {}", w.week, measure.text(v));
    let marks = weeks
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, (w, v))| {
            let href = link(w);
            let name = label(w, *v);
            match (measure, v) {
                (Measure::Deployments, Some(v)) => {
                    let (bar_y, bar_h) = (y(*v), (HEIGHT - BOTTOM) - y(*v));
                    view! {
                        <a href=href aria-label=name.clone()>
                            <title>{name.clone()}</title>
                            <rect x=format!("{:.1}", x(i) - step * 0.35) y=format!("{bar_y:.1}") width=format!("{:.1}", step * 0.7) height=format!("{:.1}", bar_h.max(0.5)) class="fill-indigo-600 hover:fill-indigo-800"/>
                        </a>
                    }
                    .into_any()
                }
                (_, Some(v)) => view! {
                    <a href=href aria-label=name.clone()>
                        <title>{name.clone()}</title>
                        <circle cx=format!("{:.1}", x(i)) cy=format!("{:.1}", y(*v)) r="3.5" class="fill-indigo-600 hover:fill-indigo-800"/>
                    </a>
                }
                .into_any(),
                (_, None) => ().into_any(),
            }
        })
        .collect_view();
    let line: String = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect::<Vec<_>>()
        .join(" ");
    let drawn_line = (measure != Measure::Deployments).then(|| {
        view! { <polyline points=line fill="none" class="stroke-indigo-300" stroke-width="2"/> }
    });
    let first = weeks.first().map(|w| w.week.clone()).unwrap_or_default();
    let last = weeks.last().map(|w| w.week.clone()).unwrap_or_default();
    let top_text = measure.text(Some(top));
    let rows = weeks
        .iter()
        .zip(&values)
        .map(|(w, v)| {
            let href = link(w);
            view! {
                <tr>
                    <th scope="row" class="pr-3 text-left font-normal"><a href=href class="text-indigo-700 underline">{w.week.clone()}</a></th>
                    <td class="text-right">{measure.text(*v)}</td>
                </tr>
            }
        })
        .collect_view();
    let chart_id = format!(
        "trend-{env}-{}",
        title.to_lowercase().replace([' ', ','], "-")
    );
    let caption_id = chart_id.clone();
    view! {
        <figure class="min-w-0 rounded-md border border-slate-100 p-2" aria-labelledby=caption_id>
            <figcaption id=chart_id class="text-sm font-medium text-slate-800">{title}" per week"</figcaption>
            <div>
                <p class="mt-1 text-xs text-slate-600" aria-hidden="true">"top: "{top_text}</p>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") class="mt-1 block h-auto w-full" role="group" aria-label=format!("{title} per week, chart")>
                    <line x1="0" x2=WIDTH.to_string() y1=format!("{:.1}", HEIGHT - BOTTOM) y2=format!("{:.1}", HEIGHT - BOTTOM) class="stroke-slate-300"/>
                    {drawn_line}
                    {marks}
                </svg>
                <p class="flex justify-between text-xs text-slate-600" aria-hidden="true"><span>{first}</span><span>{last}</span></p>
                <details class="mt-1 text-xs text-slate-700">
                    <summary class="cursor-pointer text-indigo-700 underline">"Numbers"</summary>
                    <table class="mt-1">
                        <caption class="sr-only">{title}" per week"</caption>
                        <thead><tr><th scope="col" class="pr-3 text-left">"Week of"</th><th scope="col" class="text-right">{title}</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </details>
            </div>
        </figure>
    }
}
