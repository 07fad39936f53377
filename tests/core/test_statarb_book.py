import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.statarb_book import (
    LEG_CORRELATION,
    TARGET_COLUMNS,
    StatArbRules,
    dollar_neutral_shares,
    pair_targets,
    spread_sigma,
)


def _sig(*rows) -> pd.DataFrame:
    """rows: (symbol_y, symbol_x, action, direction, conviction[, selected[, pvalue]])."""
    out = []
    for r in rows:
        y, x, action, d, c, *rest = r
        out.append(dict(date=pd.Timestamp("2024-03-01"), symbol_y=y, symbol_x=x, zscore=-2.5 * d, hedge_ratio=1.0,
                        action=action, direction=d, conviction=c, selected=rest[0] if rest else True,
                        pvalue=rest[1] if len(rest) > 1 else 0.01))
    return pd.DataFrame(out)


def _open(*rows) -> pd.DataFrame:
    """rows: (symbol_y, symbol_x, direction, qty_y, qty_x)."""
    return pd.DataFrame(rows, columns=["symbol_y", "symbol_x", "direction", "qty_y", "qty_x"])


NO_OPEN = _open()


def _row(out: pd.DataFrame, y: str, x: str) -> pd.Series:
    hit = out[(out["symbol_y"] == y) & (out["symbol_x"] == x)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_spread_sigma_closed_form_and_simulation():
    # equal vols and rho = 0.5: the spread is as volatile as one leg
    assert spread_sigma(0.02, 0.02) == pytest.approx(0.02, rel=1e-12)
    assert spread_sigma(0.03, 0.01) == pytest.approx(np.sqrt(0.0007), rel=1e-12)
    rng = np.random.default_rng(11)
    z = rng.standard_normal((2, 400_000))
    ry = 0.03 * z[0]
    rx = 0.01 * (LEG_CORRELATION * z[0] + np.sqrt(1 - LEG_CORRELATION**2) * z[1])
    assert np.std(ry - rx) == pytest.approx(float(spread_sigma(0.03, 0.01)), rel=0.01)


def test_dollar_neutral_shares_never_exceed_pair_gross():
    # D = 1000: y 100 shares at 10; x at 600: rounding would buy 2 (1200 $) -> capped at 1 share
    qy, qx = dollar_neutral_shares(np.array([1, -1]), np.array([10.0, 10.0]), np.array([600.0, 30.0]),
                                   np.array([1000.0, 1000.0]))
    assert qy.tolist() == [100, -100]
    # second: x at 30 -> round(1000 / 30) = 33 shares (990 $), short y / long x
    assert qx.tolist() == [-1, 33]


def test_open_equal_vols_hand_checked():
    # D = 0.005 * 100_000 * 0.8 / 0.02 = 20_000 $ a leg; y: 20_000 / 50 = 400; x: 400 * 50 / 80 = 250
    out = pair_targets(_sig(("AAA", "BBB", "entry", -1, 0.8)), NO_OPEN, pd.Series({"AAA": 50.0, "BBB": 80.0}),
                       pd.Series({"AAA": 0.02, "BBB": 0.02}), 100_000.0, StatArbRules())
    assert list(out.columns) == TARGET_COLUMNS
    r = _row(out, "AAA", "BBB")
    assert (r["direction"], r["qty_y"], r["qty_x"], r["action_taken"]) == (-1, -400, 250, "open")
    assert r["conviction"] == 0.8


def test_open_unequal_vols_hits_the_dollar_sigma_target():
    # sigma_s = sqrt(0.03^2 + 0.01^2 - 2 * 0.5 * 0.03 * 0.01) = sqrt(0.0007) = 0.0264575
    # D = 500 / 0.0264575 = 18_898.2 $; y: floor(18_898.2 / 100) = 188 (18_800 $); x: round(18_800 / 30) = 627
    prices = pd.Series({"YY": 100.0, "XX": 30.0})
    vols = pd.Series({"YY": 0.03, "XX": 0.01})
    out = pair_targets(_sig(("YY", "XX", "entry", 1, 1.0)), NO_OPEN, prices, vols, 100_000.0, StatArbRules())
    r = _row(out, "YY", "XX")
    assert (r["qty_y"], r["qty_x"]) == (188, -627)  # d = +1 buys the spread: long y, short x
    dy, dx = r["qty_y"] * 100.0, r["qty_x"] * 30.0
    assert abs(dy + dx) <= 30.0  # dollar-neutral to within one x share
    pair_sigma = np.sqrt((dy * 0.03) ** 2 + (dx * 0.01) ** 2 + 2 * LEG_CORRELATION * dy * 0.03 * dx * 0.01)
    assert pair_sigma == pytest.approx(0.005 * 100_000 * 1.0, rel=0.01)


def test_conviction_scales_size():
    prices = pd.Series({"A": 10.0, "B": 10.0, "C": 10.0, "D": 10.0})
    vols = pd.Series(0.01, index=prices.index)
    out = pair_targets(_sig(("A", "B", "entry", 1, 1.0), ("C", "D", "entry", 1, 0.5)), NO_OPEN, prices, vols,
                       100_000.0, StatArbRules())
    # D = 0.005 * 100_000 * c / 0.01 = 50_000 c $ a leg at 10 $ a share
    assert _row(out, "A", "B")[["qty_y", "qty_x"]].tolist() == [5000, -5000]
    assert _row(out, "C", "D")[["qty_y", "qty_x"]].tolist() == [2500, -2500]


def test_max_pairs_keeps_held_pairs_and_takes_highest_conviction():
    prices = pd.Series(10.0, index=list("ABCDEFGHIJ"))
    vols = pd.Series(0.01, index=prices.index)
    sig = _sig(("A", "B", "none", 0, 0.0), ("C", "D", "entry", 1, 0.6), ("E", "F", "entry", -1, 0.9),
               ("G", "H", "entry", 1, 0.7), ("I", "J", "entry", 1, 0.9))
    held = _open(("A", "B", 1, 100, -100))
    out = pair_targets(sig, held, prices, vols, 1_000_000.0, StatArbRules(max_pairs=3, max_gross_leverage=10.0))
    assert out[["symbol_y", "action_taken"]].values.tolist() == [["A", "hold"], ["E", "open"], ["I", "open"]]
    assert _row(out, "A", "B")[["qty_y", "qty_x"]].tolist() == [100, -100]  # held pairs are not re-sized
    # one slot left and a conviction tie: the symbols decide (E before I); a held pair keeps its conviction
    held = held.assign(conviction=0.55)
    out = pair_targets(sig, held, prices, vols, 1_000_000.0, StatArbRules(max_pairs=2, max_gross_leverage=10.0))
    assert out[["symbol_y", "action_taken", "conviction"]].values.tolist() == [["A", "hold", 0.55], ["E", "open", 0.9]]


def test_gross_leverage_cap_greedy_in_conviction_order():
    # budget 2 x 10_000 = 20_000 $ gross; the held pair uses 2_000.
    # Full sizes: D = 0.005 * 10_000 * c / 0.01 = 5_000 c -> gross 10_000, 9_000, 8_000 for c = 1, 0.9, 0.8.
    # First fits (10_000); second gets the 8_000 left (400 shares a leg); third gets nothing.
    prices = pd.Series(10.0, index=list("ABCDEFGH"))
    vols = pd.Series(0.01, index=prices.index)
    sig = _sig(("C", "D", "entry", 1, 1.0), ("E", "F", "entry", 1, 0.9), ("G", "H", "entry", -1, 0.8))
    out = pair_targets(sig, _open(("A", "B", -1, -100, 100)), prices, vols, 10_000.0, StatArbRules())
    assert _row(out, "C", "D")[["qty_y", "qty_x"]].tolist() == [500, -500]
    assert _row(out, "E", "F")[["qty_y", "qty_x"]].tolist() == [400, -400]
    assert not (out["symbol_y"] == "G").any()
    gross = (out["qty_y"].abs() * 10.0 + out["qty_x"].abs() * 10.0).sum()
    assert gross == 20_000.0


def test_exits_stops_and_broken_pairs_close_once_with_zero_quantity():
    sig = _sig(("A", "B", "exit", 0, 0.0), ("C", "D", "stop", 0, 0.0), ("E", "F", "stop", 0, 0.0, False),
               ("G", "H", "none", 0, 0.0, False), ("I", "J", "none", 0, 0.0, True, 0.2), ("K", "L", "none", 0, 0.0),
               ("O", "P", "entry", -1, 0.9), ("Q", "R", "entry", 1, 0.9))
    held = _open(("A", "B", 1, 10, -10), ("C", "D", -1, -10, 10), ("E", "F", 1, 10, -10), ("G", "H", 1, 10, -10),
                 ("I", "J", 1, 10, -10), ("K", "L", 1, 10, -10), ("M", "N", -1, -10, 10), ("O", "P", 1, 10, -10),
                 ("Q", "R", 1, 10, -10), ("S", "T", 1, 0, 0))  # S/T: closed yesterday, still listed
    prices = pd.Series(10.0, index=list("ABCDEFGHIJKLMNOPQRST"))
    vols = pd.Series(0.01, index=prices.index)
    out = pair_targets(sig, held, prices, vols, 100_000.0, StatArbRules())
    got = {r.symbol_y: (r.action_taken, r.qty_y, r.qty_x, r.direction) for r in out.itertuples()}
    assert got == {
        "A": ("close_exit", 0, 0, 1),
        "C": ("close_stop", 0, 0, -1),
        "E": ("close_broken", 0, 0, 1),    # a stop on a pair no longer selected
        "G": ("close_broken", 0, 0, 1),    # not selected, whatever the action
        "I": ("close_broken", 0, 0, 1),    # p-value above the signal layer's broken_p (0.10)
        "K": ("hold", 10, -10, 1),
        "M": ("hold", -10, 10, -1),        # no signal row today: held as is
        "O": ("close_exit", 0, 0, 1),      # entry on the other side: the spread crossed its mean
        "Q": ("hold", 10, -10, 1),         # entry on the side already held: no re-sizing
    }


def test_entries_only_on_entry_with_price_vol_and_conviction():
    prices = pd.Series({"A": 10.0, "B": 10.0, "C": 10.0, "D": 10.0, "E": 10.0, "F": 10.0, "G": 10.0, "H": 10.0,
                        "J": 10.0, "K": np.nan, "L": 10.0})
    vols = pd.Series(0.01, index=prices.index).drop("H")
    sig = _sig(("A", "B", "none", 1, 0.9), ("C", "D", "exit", 0, 0.0), ("E", "F", "entry", 1, 0.0),
               ("G", "H", "entry", 1, 0.9), ("I", "J", "entry", 1, 0.9), ("K", "L", "entry", -1, 0.9))
    out = pair_targets(sig, NO_OPEN, prices, vols, 100_000.0, StatArbRules())
    assert out.empty and list(out.columns) == TARGET_COLUMNS
    # and nothing opens without capital
    ok = _sig(("A", "B", "entry", 1, 0.9))
    assert pair_targets(ok, NO_OPEN, prices, vols, 0.0, StatArbRules()).empty
    assert len(pair_targets(ok, NO_OPEN, prices, vols, 100_000.0, StatArbRules())) == 1


def test_too_small_to_trade_is_not_opened():
    # D = 0.005 * 1_000 * 1 / 0.01 = 500 $ < one share at 600 $
    out = pair_targets(_sig(("A", "B", "entry", 1, 1.0)), NO_OPEN, pd.Series({"A": 600.0, "B": 10.0}),
                       pd.Series({"A": 0.01, "B": 0.01}), 1_000.0, StatArbRules())
    assert out.empty


def test_duplicate_signal_rows_raise():
    sig = _sig(("A", "B", "entry", 1, 0.9), ("A", "B", "exit", 0, 0.0))
    with pytest.raises(ValueError):
        pair_targets(sig, NO_OPEN, pd.Series({"A": 10.0, "B": 10.0}), pd.Series({"A": 0.01, "B": 0.01}),
                     1e5, StatArbRules())


def test_empty_inputs_give_typed_empty_book_and_holds_survive_empty_signals():
    empty_sig = _sig().reindex(columns=["date", "symbol_y", "symbol_x", "zscore", "hedge_ratio", "action",
                                        "direction", "conviction", "selected", "pvalue"])
    out = pair_targets(empty_sig, pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype=float), 1e5, StatArbRules())
    assert out.empty and list(out.columns) == TARGET_COLUMNS
    assert out["qty_y"].dtype == np.int64 and out["conviction"].dtype == float
    out = pair_targets(empty_sig, _open(("A", "B", 1, 5, -3)), pd.Series(dtype=float), pd.Series(dtype=float), 1e5,
                       StatArbRules())
    assert out[["symbol_y", "qty_y", "qty_x", "action_taken"]].values.tolist() == [["A", 5, -3, "hold"]]
