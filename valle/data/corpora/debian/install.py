"""Install the Debian packages a source reads: the exact shell lines, printed, then run.

One apt-get line installs what can be installed together. Packages Debian declares in
conflict with those (asterisk's Spanish and French transcripts) are downloaded and
unpacked under /usr/local/share/valle/debian, where the readers look too; dpkg does not
track them, and `rm -r /usr/local/share/valle/debian` removes them.
"""

import subprocess

from valle.data.corpora.debian import ALL, DEBIAN_SOURCES, SOURCE_NAMES
from valle.data.corpora.debian._common import EXTRACTED
from valle.errors import CorpusError, DependencyError

NOTES = {
    "festvox-ru": "# festvox-ru depends on festival, whose own voices are reserved for evaluation and never read",
}


def install_script(name: str) -> list[str]:
    """The shell lines that install source `name` ("debian": every source)."""
    if name not in SOURCE_NAMES:
        raise CorpusError(f"unknown Debian source {name!r}; choose one of {', '.join(SOURCE_NAMES)}")
    names = list(DEBIAN_SOURCES) if name == ALL else [name]
    packages = sorted({package for source in names for package in DEBIAN_SOURCES[source].packages})
    extract = sorted({package for source in names for package in DEBIAN_SOURCES[source].extract})
    lines = [NOTES[source] for source in names if source in NOTES]
    lines += ["apt-get update", f"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {' '.join(packages)}"]
    if extract:
        lines.append(f'mkdir -p /{EXTRACTED} && cd "$(mktemp -d)" && apt-get download {" ".join(extract)} '
                     f'&& for deb in *.deb; do dpkg-deb -x "$deb" /{EXTRACTED}; done')
    return lines


def run_script(lines: list[str]) -> None:
    """Run the lines in one shell, stopping at the first that fails."""
    result = subprocess.run(["bash", "-ec", "\n".join(lines)])
    if result.returncode:
        raise DependencyError(f"installing the packages failed (exit status {result.returncode}, apt's message above): "
                              "run the command as root, or run the printed lines yourself")
