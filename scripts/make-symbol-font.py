"""Build templates/fonts/KpiSymbols.ttf: the few symbols Noto Sans lacks, from DejaVu Sans.

Run once when the set of symbols changes (Debian: apt-get install fonts-dejavu-core):
    python scripts/make-symbol-font.py
"""

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

SOURCE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
TARGET = Path(__file__).resolve().parents[1] / "templates" / "fonts" / "KpiSymbols.ttf"
SYMBOLS = "●▲■○→←↑↓✓✗△□◆−≤≥"  # − ≤ ≥: the formulas of "How this was computed"

font = TTFont(SOURCE)
options = subset.Options()
options.name_IDs = ["*"]
subsetter = subset.Subsetter(options)
subsetter.populate(text=SYMBOLS)
subsetter.subset(font)
for record in font["name"].names:
    if record.nameID in (1, 4, 16):
        record.string = "KPI Symbols"
    elif record.nameID == 6:
        record.string = "KPISymbols"
font.save(TARGET)
print(TARGET, TARGET.stat().st_size, "bytes")
