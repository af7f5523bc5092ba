"""How InfluxDB 1.x writes names, strings, durations and numbers back as InfluxQL (its statements' String())."""
from __future__ import annotations

from .tokens import KEYWORDS, is_ident_char, is_letter

NS_PER = {"w": 7 * 86400 * 10**9, "d": 86400 * 10**9, "h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9,
          "ms": 10**6, "u": 10**3}


def ident_needs_quotes(ident: str) -> bool:
    """True when ``ident`` is a keyword or not a bare identifier, so InfluxQL must double-quote it."""
    if ident.lower() in KEYWORDS:
        return True
    for i, ch in enumerate(ident):
        if i == 0 and not (is_letter(ch) or ch == "_"):
            return True
        if i > 0 and not is_ident_char(ch):
            return True
    return False


def _escape(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(quote, "\\" + quote)


def quote_ident(*segments: str) -> str:
    """Segments joined by dots, each double-quoted when needed (every segment but the last if not empty)."""
    out = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        need = (ident_needs_quotes(seg) or (i < last and seg != "")
                or ((i == 0 or i == last) and seg == ""))
        text = _escape(seg, '"')
        out.append(f'"{text}"' if need else text)
    return ".".join(out)


def quote_string(text: str) -> str:
    """A single-quoted InfluxQL string."""
    return "'" + _escape(text, "'") + "'"


def format_duration(ns: int) -> str:
    """A duration in its largest whole unit (w, d, h, m, s, ms, else u), as InfluxDB prints it."""
    if ns == 0:
        return "0s"
    for unit, size in NS_PER.items():
        if unit == "u" or ns % size == 0:
            return f"{_go_div(ns, size)}{unit}"
    raise AssertionError("unreachable")


def _go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go's."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def format_float_g(value: float) -> str:
    """Go's %v of a float64: the shortest digits, exponent form when the exponent is < -4 or >= 6."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    digits = mantissa.lstrip("-").replace(".", "")
    point = mantissa.lstrip("-").find(".")
    if point < 0:
        point = len(mantissa.lstrip("-"))
    exp = int(exp_text) if exp_text else 0
    stripped = digits.lstrip("0")
    if not stripped:
        return "-0" if text.startswith("-") else "0"
    lead_zeros = len(digits) - len(stripped)
    decimal_exp = point + exp - lead_zeros - 1  # exponent of the first significant digit
    sig = stripped.rstrip("0")
    sign = "-" if value < 0 else ""
    if decimal_exp < -4 or decimal_exp >= 6:
        body = sig[0] + ("." + sig[1:] if len(sig) > 1 else "")
        return f"{sign}{body}e{'-' if decimal_exp < 0 else '+'}{abs(decimal_exp):02d}"
    if decimal_exp < 0:
        return f"{sign}0.{'0' * (-decimal_exp - 1)}{sig}"
    if len(sig) <= decimal_exp + 1:
        return sign + sig + "0" * (decimal_exp + 1 - len(sig))
    return f"{sign}{sig[:decimal_exp + 1]}.{sig[decimal_exp + 1:]}"


def format_float_f3(value: float) -> str:
    """A float literal as InfluxDB prints it in a statement: three decimals."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.3f}"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def format_go_duration(ns: int) -> str:
    """Go's time.Duration String() (e.g. 168h0m0s, 1.5ms), which a few InfluxDB statements print."""
    if ns == 0:
        return "0s"
    u = abs(ns)
    if u < 10**3:
        text = f"{u}ns"
    elif u < 10**6:
        text = _fraction(u, 10**3) + "µs"
    elif u < 10**9:
        text = _fraction(u, 10**6) + "ms"
    else:
        hours, rest = divmod(u, 3600 * 10**9)
        minutes, rest = divmod(rest, 60 * 10**9)
        text = _fraction(rest, 10**9) + "s"
        if hours or minutes:
            text = f"{minutes}m" + text
        if hours:
            text = f"{hours}h" + text
    return "-" + text if ns < 0 else text
