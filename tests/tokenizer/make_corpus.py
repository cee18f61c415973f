#!/usr/bin/env python3
"""Writes tests/tokenizer/corpus.jsonl: the tokenizer test corpus.

One JSON string per line, so a case can hold newlines, tabs, NULs and any
Unicode. The corpus mixes real English prompts (MT-Bench and Spec-Bench
questions from ../shared/data/prompts, first turns, in file order) with
hand-written cases for the places tokenizers get wrong: whitespace runs,
tabs and newlines, numbers, code, accents (precomposed and combining), CJK,
emoji (ZWJ sequences, flags, skin tones), other scripts, contractions, and text
that looks like special tokens.

Usage: python3 tests/tokenizer/make_corpus.py [PROMPTS_DIR]
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROMPTS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "prompts")

cases = []


def add(*items):
    cases.extend(items)


# --- edge cases: empty, single characters, whitespace ---------------------
add("", " ", "  ", "a", "A", ".", "\n", "\t", "\r\n", "\r", " a", "a ", " a ", "  a", "a  ")
for n in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33):
    add(" " * n + "x", "x" + " " * n + "y", "end" + " " * n)
add("\t\tindented with tabs", "\tx\ty\tz\t", "a\t \t b", " \t \n \r\n ")
add("line one\nline two\nline three", "para one\n\npara two\n\n\npara three",
    "trailing newline\n", "\n\nleading newlines", "windows\r\nline\r\nendings\r\n",
    "mixed \n\t \n  \t\t\n", "   \n   \n   ", "\n \n \n", "x\n\n\n\n\n\n\n\ny")
add("no\u00a0break\u00a0space", "ideographic\u3000space", "thin\u2009space and hair\u200aspace",
    "zero\u200bwidth\u200bspace", "em\u2003space", "line\u2028separator", "para\u2029separator",
    "next\u0085line", "mongolian\u180evowel separator", "narrow\u202fnbsp", "form\ffeed", "vertical\vtab",
    "nul\u0000byte", "bell\u0007and escape\u001b[0m", "del\u007fchar", "ctrl\u0004\u0006\u0013\u0014\u0016\u001dchars",
    "soft\u00adhyphen", "bom\ufeffinside", "\ufeffbom at start", "replacement \ufffd char")

# --- English -----------------------------------------------------------
add("Hello world", "Hello, world!", "hello world", "HELLO WORLD", "Hello World.",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
    "To be, or not to be: that is the question.",
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: Hello! ASSISTANT:",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "I'm sure you're right, but they've said we'd be fine and he'll see it's done.",
    "I'M SURE YOU'RE RIGHT, BUT THEY'VE SAID WE'D BE FINE AND HE'LL SEE IT'S DONE.",
    "don't won't can't shouldn't y'all o'clock rock'n'roll 'quoted' ''double'' '",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE", "The cat's toy; the cats' toys.",
    "Well... what?! No way!!! (Really?) [yes] {ok} <fine>",
    "e.g. i.e. etc. vs. Mr. Mrs. Dr. St. a.m. p.m.",
    "Email me at jane.doe+test@example.com or visit https://example.org/path?q=1&r=two#frag",
    "C:\\Users\\Public\\Documents\\file.txt and /usr/local/bin/tandem",
    "#hashtag @mention $dollar %percent ^caret &amp *star _under_ ~tilde `tick`",
    "-- -- --- ... ,,, ;;; ::: !!! ??? /// \\\\\\ ||| === +++ ***",
    "\"Double quotes\" and \u201ccurly quotes\u201d and \u2018single curly\u2019 and \u00abguillemets\u00bb",
    "em\u2014dash and en\u2013dash and minus\u2212sign and ellipsis\u2026",
    "Mixed CASE words LikeThis and likeThis and LIKEthis and lIKE",
    "ALLCAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS !@#",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z")

# --- numbers --------------------------------------------------------------
add("0", "1", "12", "123", "1234", "12345", "123456789", "1234567890123456789012345678901234567890",
    "3.14159265358979", "-42", "+7", "1,000,000", "1.000.000,00", "1e-9 2E+10 6.022e23",
    "0xDEADBEEF 0b1011 0o755", "The year 2024 had 366 days.", "Call 555-123-4567 or +1 (800) 555-0199.",
    "Dates: 2024-01-15, 01/15/2024, 15.01.2024", "Time 12:34:56.789", "v1.2.3-rc.4+build.5",
    "100% of 50% is 25%", "$19.99 \u20ac5 \u00a3100 \u00a5500 \u20b9250", "1st 2nd 3rd 4th 21st 102nd",
    "x1 x12 x123 1x 12x 123x", "pi=3.14;e=2.718", "\u00bd \u00bc \u00be \u2153 \u2154",
    "\u00b2 \u00b3 \u00b9 x\u00b2+y\u00b2=z\u00b2", "\u2460\u2461\u2462 \u2160\u2161\u2162",
    "\u0661\u0662\u0663 \u0967\u0968\u0969 \uff11\uff12\uff13", "room 101, floor 7, building 42B",
    "2 + 2 = 4, 10 / 3 = 3.333, 2^10 = 1024", "42" * 20)

# --- code -----------------------------------------------------------------
add("int main(void) { return 0; }",
    "#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n    printf(\"hello, %s\\n\", argv[0]);\n    return 0;\n}\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for i in range(10):\n\tprint(i ** 2)\n",
    "const add = (a, b) => a + b;\nconsole.log(add(2, 3));",
    "fn main() {\n    let v: Vec<i32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "{\"name\": \"tandem\", \"version\": 1, \"tags\": [\"llm\", \"edge\"], \"ok\": true, \"n\": null}",
    "<html><head><title>Test</title></head><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "<div>\n  <span>nested</span>\n</div>",
    "git commit -m \"fix: handle empty input\" && make -j4 test 2>&1 | tee log.txt",
    "for f in *.c; do gcc -O2 -Wall -c \"$f\"; done",
    "x = [1, 2, 3]; y = {k: v for k, v in zip('abc', x)}",
    "if (a && b || !c) { x += y << 2; } else { z ^= ~w >> 1; }",
    "    four spaces\n        eight spaces\n            twelve spaces",
    "\tone tab\n\t\ttwo tabs\n\t\t\tthree tabs",
    "// comment\n/* block\n   comment */\n# shell comment\n-- sql comment",
    "a_b_c snake_case camelCase PascalCase kebab-case SCREAMING_SNAKE __dunder__",
    "std::vector<std::string> v; v.push_back(\"x\"); auto it = v.begin();",
    "$ ./configure --prefix=/opt && make && sudo make install",
    "regex: ^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$",
    "\\begin{equation} E = mc^2 \\end{equation} and $\\sum_{i=1}^{n} x_i$",
    "| col1 | col2 |\n|------|------|\n| a    | b    |",
    "# Heading\n\n## Sub-heading\n\n- item one\n- item two\n\n1. first\n2. second\n\n**bold** _italic_ `code`",
    "```python\nprint('hi')\n```")

# --- accents and other Latin -----------------------------------------------
add("caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade co\u00f6perate", "Cr\u00e8me br\u00fbl\u00e9e \u00e0 la fran\u00e7aise",
    "Stra\u00dfe \u00fcber M\u00fcnchen \u00c4rger \u00d6l", "\u00bfD\u00f3nde est\u00e1 el ba\u00f1o? \u00a1Ma\u00f1ana!",
    "S\u00e3o Paulo, cora\u00e7\u00e3o, a\u00e7\u00facar", "\u0141\u00f3d\u017a \u017c\u00f3\u0142w \u0107ma \u015bwi\u0119ty",
    "\u010ce\u0161tina: \u0159e\u0159icha, \u017elu\u0165ou\u010dk\u00fd k\u016f\u0148",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: \u0111\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i",
    "T\u00fcrk\u00e7e: \u0131\u015f\u0131k, \u0130stanbul, \u011f\u00fcne\u015f",
    "e\u0301 vs \u00e9 (combining acute vs precomposed)", "n\u0303 a\u0300 o\u0308 u\u0302 c\u0327",
    "Z\u0351\u036b\u0343a\u0310l\u0357g\u0352o\u0315 text", "\u00c5ngstr\u00f6m \u212bngstr\u00f6m \u00e6\u00f8\u00e5 \u00c6\u00d8\u00c5",
    "\ufb01ne \ufb02ow ligatures", "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 text")

# --- other scripts ------------------------------------------------------------
add("\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac: \u03b1\u03b2\u03b3 \u0394\u03b5\u03bb\u03c4\u03b1",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u0540\u0561\u0575\u0565\u0580\u0565\u0576",
    "\u12a0\u121b\u122d\u129b \u1260\u12db\u1290\u1275", "English mixed with \u0440\u0443\u0441\u0441\u043a\u0438\u0439 and \u0627\u0644\u0639\u0631\u0628\u064a\u0629")

# --- CJK -------------------------------------------------------------------------
add("\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002", "\u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \u6f22\u5b57",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.", "\uc548\ub155\ud558\uc138\uc694, \uc138\uacc4!",
    "\u7e41\u9ad4\u4e2d\u6587\u8207\u7c21\u4f53\u4e2d\u6587", "\u3000\u5168\u89d2\u30b9\u30da\u30fc\u30b9\u3000",
    "\u6570\u5b57123\u3068\u6587\u5b57abc\u306e\u6df7\u5728", "\u3010\u62ec\u5f27\u3011\u300c\u5f15\u7528\u300d\u300e\u4e8c\u91cd\u300f",
    "\U0002000b \U00020bb7 rare CJK extension B", "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5341")

# --- emoji ---------------------------------------------------------------------------
add("\U0001f600", "\U0001f600\U0001f601\U0001f602", "I love it \u2764\ufe0f!", "\U0001f44d\U0001f3fd thumbs up",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family", "\U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea flags",
    "1\ufe0f\u20e3 keycap", "\U0001f9d1\u200d\U0001f4bb coder", "emoji\U0001f680in\U0001f30dthe\u2728middle",
    "\u2603 \u2602 \u2600 \u260e \u2709 \u270f \u2714 \u2716", "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f3f4\u200d\u2620\ufe0f",
    "   \U0001f525   spaced   \U0001f525   ", "\U0001f600" * 8, "\U00010348 gothic \U0001d54f math",
    "\U000e0067 tag char", "\U0001fae0 newer emoji")

# --- special-token look-alikes -----------------------------------------------------
add("<s>", "</s>", "<unk>", "<s>hello</s>", "hello</s>world", "<s> <s> </s>", "<s><s></s></s>",
    "x<s>y", "a </s> b", "<s", "s>", "< s >", "<<s>>", "</s ><s >", "<S>", "<unk> token", "<UNK>",
    "<0x41>", "<0x0A> is a newline byte", "<0xZZ>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "before<|im_start|>after", "<|im_start|><|im_end|><|im_start|>", " <|im_start|> ", "<|im_start|",
    "|im_start|>", "<|im_start|>\n\n", "<|endoftext|><|endoftext|>", "<repo_name>tandem<file_sep>main.c",
    "<filename>a.py<gh_stars>10", "<jupyter_code>print(1)<jupyter_output>1", "<|begin_of_text|><|eot_id|>",
    "[INST] hi [/INST]", "<<SYS>>\nsys\n<</SYS>>", "USER: hi ASSISTANT: hello</s>USER: again ASSISTANT:",
    "\u2581space\u2581marker\u2581", "\u0120G with dot \u010a newline mark", "<pad> <mask> [CLS] [SEP] [PAD]")

# --- longer mixed --------------------------------------------------------------------
add("Prices: apples $1.20/lb, bananas $0.59/lb \u2014 total: $12.34 (incl. 8.25% tax).",
    "\u201cIt\u2019s 5 o\u2019clock somewhere,\u201d she said \u2014 and laughed. \U0001f602",
    "Temperature: -40\u00b0C = -40\u00b0F; 100\u00b0C = 212\u00b0F.",
    "Q: What's 7\u00d78? A: 56. Q: 9\u00f73? A: 3. \u221a16 = 4, \u221e > 10\u00b9\u2070\u2070",
    "Chemical: H\u2082O, CO\u2082, C\u2086H\u2081\u2082O\u2086; \u0394G = \u0394H \u2212 T\u0394S",
    "The r\u00e9sum\u00e9 (\u5c65\u6b74\u66f8) was \u2728perfect\u2728 \u2014 \u00a1excelente!",
    "Loremipsumdolorsitametconsecteturadipiscingelitseddoeiusmodtemporincididuntutlaboreetdoloremagnaaliqua",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abababababababababababababababababababababababab", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "................................................................", "==============================",
    "\n".join("%d. item number %d" % (i, i) for i in range(1, 13)),
    "Name:\tAlice\nAge:\t30\nCity:\tParis\n",
    "  leading and trailing spaces  ", "\t leading tab-space mix \t", "ends with space ", " starts with space")

# --- real prompts ----------------------------------------------------------------------
def prompts(name):
    path = os.path.join(PROMPTS, name)
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


for q in prompts("mt_bench_question.jsonl"):
    add(q["turns"][0])
seen = set(cases)
for q in prompts("spec_bench_question.jsonl"):
    t = q["turns"][0]
    if t in seen or len(t) > 4000:
        continue
    seen.add(t)
    add(t)
    if len(cases) >= 620:
        break

assert len(cases) >= 500, len(cases)
out = os.path.join(HERE, "corpus.jsonl")
with open(out, "w", encoding="utf-8") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print("wrote %s: %d lines" % (out, len(cases)))
