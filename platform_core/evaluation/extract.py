"""Reading answers out of model outputs: choice letters, numbers, code blocks; normalisation for exact match;
the CJK-keeping tokenizer for ROUGE.

    extract_choice("The answer is (B).")            # 'B'
    extract_number("so 3 + 4 = 7")                  # 7.0
    normalize_answer("The  Cat!") == "cat"          # SQuAD normalisation
    normalize_zh_answer("答案：北京。") == "答案北京"  # LongBench's Chinese variant
    CJKTokenizer().tokenize("GPU 训练")              # ['gpu', '训', '练']
"""

from __future__ import annotations

import re
import string
import unicodedata
from fractions import Fraction

CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{CJK_CHARS}]")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
ZH_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
_ASCII_PUNCTUATION = set(string.punctuation)
_ALL_PUNCTUATION = _ASCII_PUNCTUATION | set(ZH_PUNCTUATION)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
DEFAULT_CHOICES = "ABCD"
ALL_CHOICES = "ABCDEFGHIJ"


def has_cjk(text: str) -> bool:
    """Return True when the text contains a Chinese/Japanese character."""
    return bool(_CJK.search(text or ""))


def strip_reasoning(text: str) -> str:
    """Return the output without `<think>...</think>` blocks (an unclosed one runs to the end)."""
    return _THINK.sub("", text or "").strip() if "<think>" in (text or "") else (text or "").strip()


# -- exact match ---------------------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop ASCII punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_zh_answer(text: str) -> str:
    """Chinese normalisation (LongBench): lower case, drop ASCII and Chinese punctuation, drop all whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ALL_PUNCTUATION)
    return "".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    """Normalised exact match; the Chinese variant is used when the reference contains CJK characters."""
    normalize = normalize_zh_answer if has_cjk(reference) else normalize_answer
    return normalize(strip_reasoning(prediction)) == normalize(reference)


# -- ROUGE tokenizer -----------------------------------------------------------------------------------------------
_TOKEN = re.compile(f"[{CJK_CHARS}]|[^\\W_{CJK_CHARS}]+")


class CJKTokenizer:
    """rouge-score tokenizer: lower-cased words of letters/digits, each CJK character a token, punctuation dropped.

    For ASCII text it gives the same tokens as rouge-score's default tokenizer without stemming; unlike it, it keeps
    Chinese (the default drops every non-ASCII character, so identical Chinese strings score 0).
    """

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN.findall(text.lower())


# -- choices -------------------------------------------------------------------------------------------------------
_REFERENCE_LETTER = re.compile(r"\s*[(（\[]?\s*([A-Ja-j])\s*[)）\]]?\s*[.．。]?\s*")
_REFERENCE_LABELLED = re.compile(r"\s*[(（\[]?([A-J])\s*[)）\].．:：、]\s*\S")
_OPTION_LABEL = re.compile(r"(?m)^\s*[(（]?([A-J])\s*[)）.．:：、]")


def reference_choice(reference: str) -> str | None:
    """Return the letter of a multiple-choice reference ('B', '(B)', 'b.', 'B. Paris'), or None ('A dog' is not one)."""
    match = _REFERENCE_LETTER.fullmatch(reference or "") or _REFERENCE_LABELLED.match(reference or "")
    return match.group(1).upper() if match else None


def choice_letters(prompt: str = "", reference: str = "") -> str:
    """Return the valid letters for an item: those labelled in the prompt (A. ... B. ...), at least A-D."""
    found = set(_OPTION_LABEL.findall(prompt or ""))
    ref = reference_choice(reference) if reference else None
    if ref:
        found.add(ref)
    last = max(found | set(DEFAULT_CHOICES))
    return ALL_CHOICES[: ALL_CHOICES.index(last) + 1]


def _choice_patterns(letters: str) -> list[re.Pattern]:
    upper = f"[{letters}]"
    lower = f"[{letters.lower()}]"
    either = f"[{letters}{letters.lower()}]"
    return [
        re.compile(rf"\\boxed\s*\{{\s*(?:\\text(?:bf)?\s*\{{\s*)?[(（]?\s*({either})\s*[)）]?\s*\}}"),
        re.compile(
            r"(?i:answer|答案|选项|选择)\s*(?i:is|为|是|应为|应该是)?\s*(?i:option|choice|选项)?\s*[:：]?\s*[(（\[]?\s*"
            rf"(?:({upper})(?![A-Za-z])|({lower})(?=\s*[)）\].。]|\s*$))"
        ),
        re.compile(rf"(?m)^\s*[(（\[]?\s*({upper})\s*[)）\].。:：]?\s*$"),
        re.compile(rf"[(（]\s*({upper})\s*[)）]"),
        re.compile(rf"(?<![A-Za-z])({upper})(?![A-Za-z])"),
    ]


_PATTERN_CACHE: dict[str, list[re.Pattern]] = {}


def extract_choice(text: str, letters: str = DEFAULT_CHOICES) -> str | None:
    """Return the chosen letter: the last match of the first pattern that hits in the cascade, or None.

    Cascade: \\boxed{X}; an anchor ("answer is", "答案是", "选项", ...) before X (a lower-case letter only when
    followed by ')' '.' or the end, so "the answer is a dog" is not A); X alone on a line; (X); the last
    stand-alone capital among the valid letters.
    """
    patterns = _PATTERN_CACHE.get(letters)
    if patterns is None:
        patterns = _PATTERN_CACHE.setdefault(letters, _choice_patterns(letters))
    text = strip_reasoning(text)
    for pattern in patterns:
        matches = pattern.findall(text)
        if matches:
            last = matches[-1]
            letter = next(g for g in last if g) if isinstance(last, tuple) else last
            return letter.upper()
    return None


# -- numbers -------------------------------------------------------------------------------------------------------
_NUM = r"(?:(?<![\w)])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?"
_NUMBER = re.compile(rf"(?<![\d.]){_NUM}")
_WHOLE_NUMBER = re.compile(rf"^\s*\$?\s*({_NUM})\s*%?\s*\$?\s*[.。]?\s*$")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_NUMBER_ANCHOR = re.compile(r"(?i:answer|答案|结果)\s*(?i:is|为|是|应为|应该是)?\s*[:：]?")
LATEX_MARKERS = re.compile(r"\\[a-zA-Z]+|\$|\^|\{")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")


def _to_number(text: str) -> float | None:
    text = text.replace(",", "").replace(" ", "")
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(Fraction(int(num), int(den))) if int(den) else None
        return float(text)
    except (ValueError, ZeroDivisionError):
        return None


def _clean_digits(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("−", "-")
    return _LATEX_FRACTION.sub(r"\1/\2", text) if "frac" in text else text


def parse_number(reference: str) -> float | None:
    """Return the value of a reference that is just a number ('7', '-2.5', '1,234', '3/4', '50%'), else None."""
    match = _WHOLE_NUMBER.match(_clean_digits(reference or ""))
    return _to_number(match.group(1)) if match else None


def extract_number(text: str) -> float | None:
    """Return the answer number of an output: inside the last \\boxed{}, else the first after the last "answer is",
    else the last number in the text; None when there is no number."""
    text = _clean_digits(strip_reasoning(text))
    boxed = _BOXED.findall(text)
    if boxed:
        numbers = _NUMBER.findall(boxed[-1])
        if numbers:
            return _to_number(numbers[-1])
    anchors = list(_NUMBER_ANCHOR.finditer(text))
    if anchors:
        after = _NUMBER.search(text, anchors[-1].end())
        if after:
            return _to_number(after.group(0))
    numbers = _NUMBER.findall(text)
    return _to_number(numbers[-1]) if numbers else None


_DOLLARS = re.compile(r"\$\$?([^$]+)\$\$?")


def final_math(text: str) -> str | None:
    """Return the last \\boxed{} or $...$ content of an output, without spaces (None when there is none)."""
    text = strip_reasoning(text)
    found = _BOXED.findall(text) or _DOLLARS.findall(text)
    return "".join(found[-1].split()) if found else None


def same_math_text(prediction: str, reference: str) -> bool:
    """True when the output's final math is literally the reference (spaces and $ aside): no parsing needed."""
    answer = final_math(prediction)
    gold = "".join(reference.replace("$", "").split())
    return answer is not None and answer.strip("$") == gold


def numbers_equal(a: float | None, b: float | None) -> bool:
    """Compare two numbers with a relative tolerance of 1e-6."""
    if a is None or b is None:
        return False
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


# -- code ----------------------------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(text: str) -> str:
    """Return the program in an output: the first ```python block (else the first fenced block), else the text."""
    text = strip_reasoning(text)
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    for language, body in blocks:
        if language.lower() in ("python", "py", "python3"):
            return body
    return blocks[0][1]
