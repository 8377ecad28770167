//! One SVG per scenario family: throughput and p99 latency against the
//! client count, each scenario a line, with its pgbench ceiling and the
//! peer dashed where they were measured.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Options;
use crate::drive::{Family, Scenario, Statement};
use crate::report::{Report, Row};

const SIZE: (u32, u32) = (1200, 480);

/// One line of a panel: its label, (position of the client count, value)
/// points and its look.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
}

pub fn write(options: &Options, report: &Report) -> Result<(), String> {
    for family in Family::ALL {
        let scenarios: Vec<(Scenario, &[Row])> = report
            .scenarios
            .iter()
            .filter(|(s, _)| s.family() == family)
            .map(|(s, rows)| (*s, rows.as_slice()))
            .collect();
        if scenarios.is_empty() {
            continue;
        }
        let path = options.out.join(family.chart_file());
        draw(&path, family, &scenarios, report, &options.clients)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

/// The peer: the same hue as our line, half way to white.
fn lighter(c: RGBColor) -> RGBColor {
    let half = |v: u8| ((u16::from(v) + 255) / 2) as u8;
    RGBColor(half(c.0), half(c.1), half(c.2))
}

/// Ceilings: greys, darkest first.
fn grey(i: usize) -> RGBColor {
    let v = (60 + 50 * (i % 3)) as u8;
    RGBColor(v, v, v)
}

/// Client counts sit evenly spaced in the order given (1, 4, 16, 64 grow
/// by the same factor, so this is their log scale), labelled by count.
fn position(clients: &[usize], count: usize) -> f64 {
    clients.iter().position(|&c| c == count).unwrap_or_default() as f64
}

fn points(rows: &[Row], clients: &[usize], value: impl Fn(&Row) -> f64) -> Vec<(f64, f64)> {
    rows.iter()
        .map(|r| (position(clients, r.run.clients), value(r)))
        .collect()
}

fn draw(
    path: &std::path::Path,
    family: Family,
    scenarios: &[(Scenario, &[Row])],
    report: &Report,
    clients: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut throughput = Vec::new();
    let mut p99 = Vec::new();
    let mut statements: Vec<Statement> = Vec::new();
    for (i, (scenario, rows)) in scenarios.iter().enumerate() {
        throughput.push(Line {
            label: scenario.title().to_string(),
            points: points(rows, clients, |r| r.run.throughput()),
            color: color(i),
            dashed: false,
        });
        p99.push(Line {
            label: scenario.title().to_string(),
            points: points(rows, clients, |r| r.run.ms(0.99)),
            color: color(i),
            dashed: false,
        });
        if let Some(peer) = report.peer.as_ref().and_then(|p| {
            p.scenarios
                .iter()
                .find(|(s, _)| s == scenario)
                .map(|(_, rows)| rows)
        }) {
            let label = format!("peer {}", scenario.title());
            throughput.push(Line {
                label: label.clone(),
                points: points(peer, clients, |r| r.run.throughput()),
                color: lighter(color(i)),
                dashed: true,
            });
            p99.push(Line {
                label,
                points: points(peer, clients, |r| r.run.ms(0.99)),
                color: lighter(color(i)),
                dashed: true,
            });
        }
        if !statements.contains(&scenario.statement()) {
            statements.push(scenario.statement());
        }
    }
    for (i, statement) in statements.iter().enumerate() {
        let points: Vec<(f64, f64)> = clients
            .iter()
            .filter_map(|&c| report.ceiling.at(*statement, c))
            .map(|r| (position(clients, r.clients), r.per_second))
            .collect();
        if !points.is_empty() {
            throughput.push(Line {
                label: format!("ceiling: {}", statement.title()),
                points,
                color: grey(i),
                dashed: true,
            });
        }
    }

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(family.title(), ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    panel(&left, "throughput", "requests/s", &throughput, clients)?;
    panel(&right, "p99 latency", "ms", &p99, clients)?;
    root.present()?;
    Ok(())
}

/// A y tick without float noise: whole numbers from 10 up, else 2 decimals.
fn tick(y: f64) -> String {
    if y >= 10.0 {
        format!("{y:.0}")
    } else {
        format!("{y:.2}")
    }
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    unit: &str,
    lines: &[Line],
    clients: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let last = clients.len().saturating_sub(1) as f64;
    // Log scale on both axes: the ceiling, our lines and the peer's sit
    // orders of magnitude apart, and ratios read as distances.
    let values = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| *v > 0.0)
    };
    let top = values().fold(1.0_f64, f64::max) * 1.5;
    let bottom = values().fold(top, f64::min) / 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.3..last + 0.3, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("clients")
        .y_desc(format!("{unit} (log scale)"))
        .x_labels(clients.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            match clients.get(i as usize) {
                Some(c) if (x - i).abs() < 0.01 && i >= 0.0 => c.to_string(),
                _ => String::new(),
            }
        })
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    for line in lines {
        let style = line.color.stroke_width(2);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(line.points.clone(), 8, 5, style))?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        } else {
            chart
                .draw_series(LineSeries::new(line.points.clone(), style))?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            chart.draw_series(
                line.points
                    .iter()
                    .map(|&p| Circle::new(p, 3, line.color.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}
