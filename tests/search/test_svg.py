from search.svg import chart, nice_ticks


def test_ticks_are_round_steps_from_zero_past_the_highest_value():
    assert nice_ticks(89.5) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0.33) == [0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(5) == [0, 1, 2, 3, 4, 5]
    assert nice_ticks(0) == [0.0, 1.0]


def test_a_line_chart_has_title_axes_ticks_legend_and_gaps():
    svg = chart(title="Latency <per> day", x_labels=["11-01", "11-02", "11-03"], series={"p50": [10, None, 30], "p95": [20, 40, 60]}, x_title="day", y_title="ms")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<title>Latency &lt;per&gt; day</title>" in svg
    assert '>day</text>' in svg and '>ms</text>' in svg
    assert [label in svg for label in ('>0</text>', '>20</text>', '>60</text>', '>11-01</text>', '>11-03</text>')] == [True] * 5
    # p50 has a gap: two one-point runs (dots, no line); p95 is one line of three points.
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 5
    assert '>p50</text>' in svg and '>p95</text>' in svg


def test_a_bar_chart_and_an_empty_one():
    bars = chart(title="Searches", x_labels=["a", "b"], series={"searches": [3, 0]}, x_title="day", y_title="searches", kind="bar")
    assert bars.count("<rect") == 1 and "<title>a: 3</title>" in bars
    assert "no data yet" in chart(title="Empty", x_labels=[], series={"x": []}, x_title="x", y_title="y")
