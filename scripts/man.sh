#!/bin/sh
# Renders the man pages (roff, gzipped) from their one Markdown source each, with pandoc:
#   scripts/man.sh OUTDIR [VERSION]
# umm(8) <- docs/umm.8.md, rebootmgr(8) <- docs/rebootmgr.md (less its developer sections),
# umm-generator(8) <- docs/umm-generator.8.md (umm-init(8) is a link to it),
# umm.toml(5) <- docs/configuration.md. "## Heading" becomes a man section, "# Title" is dropped.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/man.sh OUTDIR [VERSION]}
version=${2:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n1)}
command -v pandoc >/dev/null || { echo "man.sh: pandoc is missing (apt-get install pandoc)" >&2; exit 1; }
# Reproducible: the date of the last commit, else SOURCE_DATE_EPOCH, else today.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}
date=$(date -u -d "@$epoch" +%Y-%m-%d)
mkdir -p "$out/man5" "$out/man8"

# page NAME SECTION SOURCE "NAME line (when the source has no NAME section)" "sections to leave out|..."
page() {
    name=$1 sec=$2 src=$3 whatis=$4 drop=$5
    awk -v whatis="$whatis" -v drop="|$drop|" -v name="$name" '
        # A pipe table is buffered, and its |---|---| row rewritten with as many dashes per column
        # as its longest cell (at most 30): pandoc sizes the columns in that ratio.
        function flush(   i, j, c, line) {
            for (i = 1; i <= nrows; i++) {
                if (i == 2) {
                    line = "|"
                    for (j = 1; j <= ncols; j++) {
                        c = width[j] < 3 ? 3 : (width[j] > 30 ? 30 : width[j])
                        line = line sprintf("%*s|", c, "")
                    }
                    gsub(/ /, "-", line)
                    print line
                } else print row[i]
            }
            nrows = 0; ncols = 0; split("", width)
        }
        function table(line,   n, cells, j, w) {
            row[++nrows] = line
            gsub(/\\\|/, "", line)   # an escaped \| is inside a cell
            n = split(line, cells, /\|/)
            for (j = 2; j < n; j++) {
                w = length(cells[j]) - 2
                if (nrows != 2 && w > width[j - 1]) width[j - 1] = w
            }
            if (n - 2 > ncols) ncols = n - 2
        }
        NR == 1 && /^# / { if (whatis != "") { printf "# NAME\n\n%s - %s\n\n", name, whatis; intro = 1 }; next }
        # Text between the title and the first section is the DESCRIPTION.
        intro && /./ { intro = 0; if (!/^## /) print "# DESCRIPTION\n" }
        /^\|/ && !fence { if (!skip) table($0); next }
        nrows > 0 { flush() }
        /^```/ { fence = !fence }
        !fence && /^## / {
            h = substr($0, 4)
            skip = index(drop, "|" h "|") > 0
            if (h == "Usage") h = "SYNOPSIS"
            if (!skip) print "# " toupper(h)
            next
        }
        !fence && /^### / { if (!skip) print "## " substr($0, 5); next }
        !skip { print }
        END { if (nrows > 0) flush() }
    ' "$here/$src" |
    pandoc -f markdown -t man -s --columns=60 \
        -M title="$(echo "$name" | tr a-z A-Z)" -M section="$sec" -M date="$date" \
        -M footer="umm $version" -M header="umm manual" |
    # pandoc gives a table 70n in all, which with tbl's gaps is wider than an 80-column man(1) page;
    # the page is set ragged-right (.ad l), as narrow table columns cannot be justified; and a
    # table cell may break after a / or _ (\:), so that a long path or key fits its column; on a
    # terminal the page is one long page (as man-db's continuous rendering), so that a tall table
    # row never has to fit a 66-line page.
    awk '/^\.TH / { print; print ".ad l"; print ".if n .pl 100000v"; next }
         /T\{$/ { cell = 1 }
         cell && !/^T[{}]/ { gsub("/", "/\\:"); gsub("_", "_\\:") }
         /^T\}/ && !/T\{$/ { cell = 0 }
         /^(lw\([0-9.]+n\) ?)+\.$/ { n = split($0, w, /[()]/); line = ""
            for (i = 2; i < n; i += 2) line = line sprintf("lw(%.1fn) ", w[i] * 0.8)
            sub(/ $/, ".", line); print line; next } { print }' |
    gzip -9n > "$out/man$sec/$name.$sec.gz"
}

page umm 8 docs/umm.8.md "" ""
page rebootmgr 8 docs/rebootmgr.md "Consul-coordinated reboots, N nodes of a group at a time" \
    "The seed's constraints, expressed|umm coordination|Tests|Benchmark"
page umm-generator 8 docs/umm-generator.8.md "" ""
page umm.toml 5 docs/configuration.md "configuration of umm(8): files, their order, every key and its default" ""
ln -sfn umm-generator.8.gz "$out/man8/umm-init.8.gz"
