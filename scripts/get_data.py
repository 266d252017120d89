"""Fetch the public data sets that the lessons, benchmarks and recipes read, in the layout they read them in.

    python scripts/get_data.py                          # all six into ../shared/data beside the checkout
    python scripts/get_data.py --only sst2,mrpc --out data

Each data set is a folder of files under OUT (``OUT/sst2/train.tsv``, ...): wikitext-2, books (Project Gutenberg),
sst2, mrpc, squad-v1.1, ner-wnut17, the layout docs/guides/tests.md describes. A data set whose files are all there,
at their expected sizes, is left alone; a missing file is downloaded (urllib), unzipped where its source is a zip,
checked against its size and sha256 below, and written atomically (never half a file). MRPC's ``train.tsv`` is made
from the MSR source files as GLUE's ``download_glue_data.py`` makes it (the public copy lacks one pair). Each folder
gets a SOURCE.md naming every file's origin and the data set's licence.

Without a network, each data set that is missing is one line on stderr saying what to fetch, from where, and where
to put it; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bert.atomic import write_file_atomically, write_text_atomically
from bert.errors import BertError

DEFAULT_OUT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"  # ../shared/data beside the checkout
TIMEOUT_S = 60


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its name in the folder, size in bytes and sha256, and where it comes from: ``url``
    (a zip holding it as ``member`` when that is set), or ``make(folder)`` from the folder's other files."""

    name: str
    size: int
    sha256: str
    url: str = ""
    member: str = ""
    make: Callable[[Path], bytes] | None = None


@dataclass(frozen=True)
class DataSet:
    name: str
    origin: str  # where to fetch the files by hand: a page that lists them
    licence: str
    files: tuple[DataFile, ...]


def github(repo: str, commit: str, path: str) -> str:
    """The raw URL of ``path`` in a GitHub repository at a commit (pinned: the bytes cannot change under us)."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def mrpc_train(folder: Path) -> bytes:
    """GLUE's MRPC ``train.tsv``, made as GLUE's ``download_glue_data.py`` (``format_mrpc``) makes it: the header of
    ``msr_paraphrase_train.txt`` (its byte-order mark kept), then every pair whose (id1, id2) is not in
    ``dev_ids.tsv``, its five fields re-joined with tabs."""
    dev = {tuple(row.strip().split("\t")) for row in io.StringIO((folder / "dev_ids.tsv").read_text("utf-8"))}
    header, *rows = io.StringIO((folder / "msr_paraphrase_train.txt").read_text("utf-8"))  # lines split at \n only
    kept = [header]
    for row in rows:
        label, id1, id2, first, second = row.strip().split("\t")
        if (id1, id2) not in dev:
            kept.append("\t".join((label, id1, id2, first, second)) + "\n")
    return "".join(kept).encode("utf-8")


WIKITEXT = ("ProFatXuanAll/demo-dataset", "4532f32bb07fdca619722d320e97dc16a8eaeb0f")
BOOKS = ("RU-ECE/ECE451-Parallel", "c58dca3a6abedd8041057571c247e9a393cc3b4d")
GLUE = ("F0restL1n/BERT", "0d0288be08079531c7b3a85af3d532f9adb0f13a")
WNUT = ("leondz/emerging_entities_17", "e52a2d2a71ac1a051ca2d532eef28653c5c02603")
SQUAD = ("rajpurkar/SQuAD-explorer", "eee5fdbf62f8613a7812b03419e6b29617b74fd1")  # the SQuAD website's repository

# name, bytes, sha256 of the 43 English books (their SOURCE.md lists title and author).
BOOK_FILES = """
    11-0.txt 173597 2bb7d5634ee2683a52fc0f016464124d35fc310f395f1b79d2ed0dc33c7f2a44
    16-0.txt 290755 b1e7ade0c061259293c7b07fe3f8ba445b4cf3353e6c657c8cdcd0223bbe0eb8
    35-0.txt 204492 0eb70818a4c7e2e04f91be807bad37ca5c1475cd51cec2a7b620c4db2b595ce4
    36-0.txt 366828 416e06181a43f1a8395dcfce93dc53f099660259ec0d3fadafbe71adca5ba853
    41-0.txt 90994 9dbaa83e29c71f1e40fd986c470f5ad97412413ba05052c059885bc3e46c491b
    43-0.txt 163464 e1a3f2d20e0a7691708a6368d6b1acc7735a11cf652321ab180c6b731cf14222
    46-0.txt 182057 919e060656548dd0bf5f615fe85932e67718b9a58e5a535d1ff7548c4380caeb
    74-0.txt 428104 b1cd5782db259c00bc1a8fbb58238f285e40828cc858c1343f74a0a75157cc91
    76-0.txt 616320 cd9931183257a850178225bd5e25e4f2df0cbac544dfe9a49cd0ea5a210c24d9
    98-0.txt 804335 2fcfa071498b30724bd1bd714ba89e38477d632b86d74e87559f6259d3917e36
    120-0.txt 396594 e57c204e67befca99287e0cc94c7a65c514896369520d1bf067c89809edb765f
    140-0.txt 849597 a6f532cdd131642560ef7c299c7f75f8206f03cdace072358c9dd65bc8a9b652
    145-0.txt 1865982 8b6c750ede57371cc118ed35d1cf005680ed01f1ec8a3650240e0b94e0f83058
    158-0.txt 927445 89b601ce13c21eca31766bdd1a554842fc9ecb7d3638cc769f41712a523e24cf
    203-0.txt 1075565 c4415a5484cd6b81515155377afde417b2fb0c7b3e019d82049ac149c4bd6b97
    205-0.txt 667905 668a85e22d598bda9890dbc1d56c47388f5ae3fb189256cc7b8a38fdfdc8a621
    219-0.txt 234089 06744f4b5047357536d4d42131bb38292d8af2505ef2a21ab0d8213e1d7d1377
    244-0.txt 272277 af0f6c590ca3901b3f61d5b90acac1ac16abc83e50b8541c9f17aff079829d96
    308-0.txt 395571 8947f71d33499484c6d438a02df0146e037eb1052846b33e9822ff8b1536c5fa
    766-0.txt 2033139 2002442ff3aa4225ef3ed67ca594ad7b2c1746d367b5fbac9f93ab53ee864cb2
    829-0.txt 611929 d00c4f379e789c146ce22749b8bcba6559243e1eb9a457f7d917a26b6ff7bf9b
    863-0.txt 361771 0941eb596933d0b929ea1830e6a423f3aa737669d0237ed35328fbddc69c2c5b
    940-0.txt 890282 10eccaf8f83028722eef1bba222b3f5e4d5f83e7f2d878a3aa57318c6ced8f83
    1155-0.txt 473693 809e9720a4b8931fbe1ac1fa33d248b77f4b913b1b21aba1c298c5209e152a57
    1184-0.txt 2787780 b48304a756264bfa7d8247c5e50cccedb7b936d1a9a184f86d7f76e2f93c7e3b
    1237-0.txt 612270 5dd484aa16e5e90d6da40577fa4fbe4151925dccf150e922b5764c5aad4821c0
    1952-0.txt 51185 fdd24cf8a952177d32321079a373ddbf4f98663aec8a8a0009bdff0e1ebbb622
    2591-0.txt 560162 dd8e1fe94b1b704e2283aa14d47a03b917c5d11621e76e0c80b5495e63b699dc
    2600-0.txt 3359549 b56f21f41914398cccfcef7bcb8d40888d2cea0aff8c35e2494a1b1221205888
    2701-0.txt 1276201 baf9b04fcf6e0008f30eaaa6697277751448c1070b20175e0082f28cbb161fd3
    2852-0.txt 388106 df5427dfa53abff570ed3351a99bc273e41f0c3cb4616fcd89d65765069af970
    3176-0.txt 1149349 4c57ac3434eb59a86ff1817251b9166398dc6a1f1abfbf119024c52cd14e799c
    4300-0.txt 1586393 8b2db6ce17d0e8cdc95c20c70fd1206304059d4f7f09b52410d3a77771fa7e1f
    6688-0.txt 1212752 df780758366205901dda9ae2891d07ae79840d22b534ab4a77c1a512648d1813
    25344-0.txt 525464 ad643a9f3f71c6191f88b7dcf4fa4953db7931dd58362531bbf76ffec1f7aa54
    27942-0.txt 2514451 e3aac2498d42cfd1338f827c6a648fd866b0bbc1947d1a28f3dcd01378265599
    28054-0.txt 2044194 175b125fe5c404bda90482c53e01dc01352b957bdbd92c784a11ca5e977684f9
    56817-0.txt 761763 25ebc9435a779cea72d7abcbddecedde9b3dd977ddd057dcf4beda81a1410382
    58585-0.txt 91422 288914303a461698b578ae2cea9a1e0e64cb2955c6d0ded71898335e2fed959f
    58866-0.txt 404957 985a4b1e594d33143a8d99b44ba3eea39a2e65592ab116d06e206ab411e79dbf
    60364-0.txt 388684 c02d2568faf2ff9a6a3478ed45a253d7de996eb3749b3458d99e864745cb672f
    60378-0.txt 324058 32e782ac5f571c9357da8aea47957a7799dc575107c29725464e8c197e62d0e1
    60392-0.txt 72187 9d54726309bc916d1a3e0e9c1b677d01d9c2d04936a00af3e4b58e4c45cb150c
"""

DATA_SETS = {d.name: d for d in (
    DataSet("wikitext-2", f"https://github.com/{WIKITEXT[0]}/tree/{WIKITEXT[1]}/wikitext-2",
            "CC BY-SA (Merity et al., 2016; text from Wikipedia)", tuple(
                DataFile(f"wiki.{split}.tokens", size, sha256, github(*WIKITEXT, f"wikitext-2/wiki.{split}.tokens.zip"),
                         member=f"wiki.{split}.tokens")
                for split, size, sha256 in (
                    ("train", 10797148, "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
                    ("valid", 1121681, "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
                    ("test", 1256449, "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0")))),
    DataSet("books", f"https://github.com/{BOOKS[0]}/tree/{BOOKS[1]}/data/books",
            "Project Gutenberg eBooks, public domain in the USA (each file states the Project Gutenberg License)",
            tuple(DataFile(name, int(size), sha256, github(*BOOKS, f"data/books/{name}"))
                  for name, size, sha256 in map(str.split, BOOK_FILES.strip().splitlines()))),
    DataSet("sst2", f"https://github.com/{GLUE[0]}/tree/{GLUE[1]}/glue_data/SST-2",
            "none stated (GLUE SST-2; research use; cite Socher et al., 2013 and Wang et al., 2018)", tuple(
                DataFile(name, size, sha256, github(*GLUE, f"glue_data/SST-2/{name}")) for name, size, sha256 in (
                    ("train.tsv", 3806081, "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
                    ("dev.tsv", 94931, "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
                    ("test.tsv", 197335, "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13")))),
    DataSet("mrpc", f"https://github.com/{GLUE[0]}/tree/{GLUE[1]}/glue_data/MRPC",
            "none stated (GLUE MRPC, Microsoft Research Paraphrase Corpus; research use)", (
                *(DataFile(name, size, sha256, github(*GLUE, f"glue_data/MRPC/{name}")) for name, size, sha256 in (
                    ("dev.tsv", 105616, "9e8f284788040f7c9ecde2e1b3c07237c756f926bd9ef8548ef5d34b56f69f17"),
                    ("test.tsv", 445335, "aee460ceda833926b8ab2ad952d399f5cf8bc9335cff19afcac03dc449558622"),
                    ("msr_paraphrase_train.txt", 1047044,
                     "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89"),
                    ("msr_paraphrase_test.txt", 441275,
                     "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784"),
                    ("dev_ids.tsv", 6222, "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7"))),
                DataFile("train.tsv", 941471, "69abcedee3cf738c6ce58d772e43e1b7cdf5b4edee4aceda459c0d9f4e5599f3",
                         make=mrpc_train))),
    DataSet("squad-v1.1", f"https://github.com/{SQUAD[0]}/tree/{SQUAD[1]}/dataset",
            "CC BY-SA 4.0 (Rajpurkar et al., 2016)", (
                DataFile("dev-v1.1.json", 4854279, "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
                         github(*SQUAD, "dataset/dev-v1.1.json")),)),
    DataSet("ner-wnut17", f"https://github.com/{WNUT[0]}/tree/{WNUT[1]}",
            "CC BY 4.0 (Derczynski et al., 2017)", tuple(
                DataFile(name, size, sha256, github(*WNUT, name)) for name, size, sha256 in (
                    ("wnut17train.conll", 493781, "731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5"),
                    ("emerging.dev.conll", 114749, "e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8"),
                    ("emerging.test.annotated", 192425,
                     "2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0")))),
)}


def missing(data_set: DataSet, folder: Path) -> list[DataFile]:
    """The files of ``data_set`` that ``folder`` lacks, or holds at another size (a partial copy made by hand)."""
    return [f for f in data_set.files
            if not ((folder / f.name).is_file() and (folder / f.name).stat().st_size == f.size)]


def download(url: str, label: str) -> bytes:
    """The bytes at ``url`` (an OSError, URLError included, when it cannot be reached), with a progress bar."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length") if response.headers else None
        chunks = []
        with tqdm(total=int(length) if length else None, unit="B", unit_scale=True, desc=label, leave=False) as bar:
            while chunk := response.read(1 << 20):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def unzip(data: bytes, member: str, url: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise BertError(f"{url} is not a zip holding {member} ({error})") from None


def fetch_hint(data_set: DataSet, files: list[DataFile], folder: Path) -> str:
    """What to do by hand: fetch these files from the data set's page and put them in ``folder``."""
    downloads = [f for f in files if f.url]
    names = [Path(f.url).name for f in downloads]
    shown = ", ".join(names) if len(names) <= 6 else f"the {len(names)} files {names[0]} ... {names[-1]}"
    unzip_note = " and unzip them there" if any(f.member for f in downloads) else ""
    made = [f.name for f in files if f.make]
    make_note = f", then run this again to make {', '.join(made)}" if made else ""
    return f"fetch {shown} from {data_set.origin} into {folder}/{unzip_note}{make_note}"


def source_md(data_set: DataSet) -> str:
    def origin(file: DataFile) -> str:
        if file.make is not None:
            return f"made by {file.make.__name__}() from the others"
        return f"{file.url} (unzipped)" if file.member else file.url

    rows = [f"| {f.name} | {f.size} | {f.sha256} | {origin(f)} |" for f in data_set.files]
    return (f"# {data_set.name}\n\nFetched by scripts/get_data.py from {data_set.origin}.\n\n"
            f"Licence (as publicly stated): {data_set.licence}.\n\n"
            "| name | bytes | sha256 | from |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")


def fetch(data_set: DataSet, folder: Path) -> list[str]:
    """Bring ``folder`` to the data set's files (each checked against its size and sha256); returns the names it
    wrote. A file that cannot be fetched or does not match is a one-line BertError saying what to do by hand."""
    todo = missing(data_set, folder)
    if not todo:
        return []
    for file in sorted(todo, key=lambda f: f.make is not None):  # downloads first: made files are made from them
        if file.make is not None:
            data = file.make(folder)
        else:
            try:
                data = download(file.url, f"{data_set.name}/{file.name}")
            except OSError as error:  # URLError and HTTPError are OSErrors, as are timeouts and resets
                reason = getattr(error, "reason", None) or error
                hint = fetch_hint(data_set, todo, folder)
                raise BertError(f"cannot download {file.name} ({reason}): {hint}") from None
            if file.member:
                data = unzip(data, file.member, file.url)
        digest = hashlib.sha256(data).hexdigest()
        if (len(data), digest) != (file.size, file.sha256):
            raise BertError(f"{file.name} is not the expected file ({len(data)} bytes, sha256 {digest}; expected "
                            f"{file.size}, {file.sha256}): {fetch_hint(data_set, [file], folder)}")
        try:
            folder.mkdir(parents=True, exist_ok=True)  # only now: a data set that could not be fetched leaves nothing
        except OSError as error:
            raise BertError(f"cannot create {folder}: {error.strerror or error}") from None
        write_file_atomically(folder / file.name, lambda tmp, data=data: tmp.write_bytes(data))
    if not (folder / "SOURCE.md").exists():
        write_text_atomically(folder / "SOURCE.md", source_md(data_set))
    return [f.name for f in todo]


def parse_only(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATA_SETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown data set {', '.join(unknown) or repr(text)} "
                                         f"(choose from {', '.join(DATA_SETS)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="get_data.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the folder that holds one folder per data set (default ../shared/data beside the "
                             "checkout, where the lessons and benchmarks look)")
    parser.add_argument("--only", type=parse_only, default=list(DATA_SETS), metavar="NAME,...",
                        help=f"these data sets only (default all: {','.join(DATA_SETS)})")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.only:
        folder = args.out / name
        try:
            written = fetch(DATA_SETS[name], folder)
        except BertError as error:
            print(f"get_data.py: {name}: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {'wrote ' + ', '.join(written) if written else 'already there'} ({folder})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
