"""Pick the MCP servers to bring into the registry: the most-downloaded npm and PyPI packages whose
name says MCP, minus the SDKs, frameworks, clients, proxies, plugins and platform binaries.

    python bench/intake/candidates.py NPM_TSV PYPI_TSV [--npm 300] [--pypi 150]

The inputs are package lists with monthly downloads (npm: name, version, downloads_a_month, summary;
PyPI: name, version, month, rank_among_15000_most_downloaded, summary). Writes
bench/intake/candidates.tsv (ecosystem, package, downloads or rank, summary) in download order and
bench/intake/candidates.txt (one `npm:NAME` / `pypi:NAME` a line, for `registry add --from`)."""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent

NAME_HINT = re.compile(r"mcp|modelcontextprotocol", re.IGNORECASE)

NOT_A_SERVER = re.compile(
    r"sdk|client|adapter|framework|types?$|fastmcp|^tmcp$|^@tmcp/|transport|inspector|proxy|remote|"
    r"^@mcp-ui/|^@mcp-b/|ext-apps|^@ai-sdk/|langchain|^@mastra/mcp$|^@hono/|handler|evals|^use-mcp|"
    r"mcp-adapter|instrumentation|utils|session|provider|middleware|plugin|"
    r"-(?:linux|win32|darwin)-(?:x64|arm64|amd64)$|^create-|mcpb$|mcporter|mcp-framework|^@rekog/|"
    r"n8n-nodes|addon-mcp|tunnel|config-schema|toolkit|^mcp-lite$|^mcp-auth$|conformance|webmcp|polyfill|"
    r"generator|^@nestjs-mcp/|^elysia-mcp$|^fastify-mcp$|^middy-mcp$|^xmcp$|mcp-tools$|^mcp-use$|^@mcp-use/|"
    r"^@theia/|^@backstage/|^@univerjs-pro/|shared$|^@zuplo/|^@frontmcp/|^@ag-ui/|^@orval/|^mcp$|"
    r"^@genkit-ai/|^@mcpjam/|^@aws/run-mcp|^@memberjunction/|^@civic/|^@gleanwork/mcp|^@epic-web/|"
    r"^add-mcp$|^envmcp$|^mcpcac$|^@goke/|^mcp-http-server$|^@apify/mcpc$|^mcp-test-client$|^@wong2/|"
    r"^@anthropic-ai/mcpb$|^@storybook/addon|^@kubb/plugin|^mcpadapt$|^mcpo$|^fast-agent|^nvidia-nat|"
    r"^dcc-mcp-core$|extensions$|^databricks-mcp$|^openinference|^winrmcp$|^arcade-mcp|^django-mcp|"
    r"^uipath-mcp$|^fastapi-mcp$|^@salesforce/mcp-provider|^@mcp-b|^@mondaydotcomorg/atp|^@chatmcp/",
    re.IGNORECASE,
)


def read(path: Path, ecosystem: str, column: int, limit: int) -> list[tuple[str, str, int, str]]:
    """The MCP-named servers of one list, best first: npm by downloads (column 2), PyPI by rank (3)."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) <= column or not row[column].isdigit() or not NAME_HINT.search(row[0]):
                continue
            summary = row[column + 1] if len(row) > column + 1 else ""
            rows.append((ecosystem, row[0], int(row[column]), summary))
    rows.sort(key=lambda r: -r[2] if ecosystem == "npm" else r[2])
    return [r for r in rows if not NOT_A_SERVER.search(r[1])][:limit]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npm_tsv", type=Path)
    parser.add_argument("pypi_tsv", type=Path)
    parser.add_argument("--npm", type=int, default=300)
    parser.add_argument("--pypi", type=int, default=150)
    options = parser.parse_args(argv)
    npm = read(options.npm_tsv, "npm", 2, options.npm)
    pypi = read(options.pypi_tsv, "pypi", 3, options.pypi)
    with (HERE / "candidates.tsv").open("w", encoding="utf-8") as out:
        out.write("ecosystem\tpackage\tdownloads_a_month_or_pypi_rank\tsummary\n")
        for eco, name, number, summary in npm + pypi:
            out.write(f"{eco}\t{name}\t{number}\t{summary[:100]}\n")
    # Interleaved so that a run cut short has covered the top of both lists.
    order = []
    for index in range(max(len(npm), len(pypi))):
        order += npm[index : index + 1] + pypi[index : index + 1]
    (HERE / "candidates.txt").write_text("".join(f"{eco}:{name}\n" for eco, name, _, _ in order))
    print(f"{len(npm)} npm and {len(pypi)} PyPI candidates", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
