"""``fauve hub publish|pull|info`` and ``fauve styles``: the Hugging Face Hub and the style catalog.

No torch is imported here, so these commands start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    hub = subparsers.add_parser("hub", help="publish model folders to the Hugging Face Hub and pull them",
                                description="Publish fauve model folders to the Hugging Face Hub and download them into "
                                            "the standard HF cache. HF_ENDPOINT, HF_TOKEN, HF_HOME and HF_HUB_OFFLINE apply.")
    sub = hub.add_subparsers(dest="hub_command", metavar="ACTION")

    p = sub.add_parser("publish", help="create the repo if needed and upload a model folder in one commit")
    p.add_argument("folder", help="a model folder (config.json + model.safetensors), e.g. from `fauve train`")
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the Hub repo id")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--token", help="a Hub token with write access (default: HF_TOKEN or `hf auth login`)")
    p.add_argument("-m", "--message", help="commit message (default: method, styles and fauve version)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_publish)

    p = sub.add_parser("pull", help="download a model repo into the HF cache (checksums verified)")
    p.add_argument("repo", metavar="OWNER/NAME")
    p.add_argument("--revision", help="branch or commit id (default: main)")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.add_argument("--token", help="a Hub token (private repos)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_pull)

    p = sub.add_parser("info", help="show a Hub repo's commit, files and metadata")
    p.add_argument("repo", metavar="OWNER/NAME")
    p.add_argument("--revision", help="branch or commit id (default: main)")
    p.add_argument("--token")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_info)

    hub.set_defaults(func=lambda args: (hub.print_help(), 2)[1])

    s = subparsers.add_parser("styles", help="list the catalog of pretrained styles",
                              description="Every catalog style with its method, source (bundled / cached / hub / "
                                          "unavailable) and license. Style ids work wherever a style is asked for.")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--available", action="store_true", help="only styles that can be loaded now")
    s.set_defaults(func=_styles)


def _publish(args: argparse.Namespace) -> int:
    from fauve.hub import publish

    result = publish(args.folder, args.repo, private=args.private, token=args.token, commit_message=args.message)
    if args.json:
        print(json.dumps({"repo_id": result.repo_id, "url": result.url, "commit": result.commit_oid,
                          "commit_url": result.commit_url, "message": result.commit_message, "card": result.card,
                          "files": result.files, "changed": result.changed, "notes": result.notes}))
        return 0
    for note in result.notes:
        print(f"fauve hub publish: note: {note}", file=sys.stderr)
    if result.card != "kept":
        print(f"model card: {result.card} {args.folder}/README.md")
    if not result.changed:
        print(f"{result.repo_id} @ {result.commit_oid[:12]} already holds these files; nothing to commit.")
        return 0
    print(f"published {result.repo_id} @ {result.commit_oid[:12]}: {result.commit_message}")
    print(f"  {result.commit_url}")
    print(f"  files: {', '.join(result.files)}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from fauve.hub import pull

    result = pull(args.repo, revision=args.revision, force=args.force, token=args.token, progress=not args.quiet)
    cfg = result.config
    info = {"repo_id": result.repo_id, "commit": result.commit, "folder": str(result.folder), "method": cfg.get("method"),
            "style_names": cfg.get("style_names") or [], "downloaded": result.downloaded,
            "from_cache": not result.downloaded}
    if args.json:
        print(json.dumps(info))
        return 0
    how = "already in the cache" if not result.downloaded else f"downloaded {len(result.downloaded)} file(s)"
    styles = ", ".join(info["style_names"]) or "any style image"
    print(f"{result.repo_id} @ {result.commit[:12]} ({how}, checksums verified)")
    print(f"  {info['method']}: {styles}")
    print(f"  {result.folder}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from fauve.hub import repo_summary

    info = repo_summary(args.repo, revision=args.revision, token=args.token)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{info['repo_id']} @ {info['sha']}{' (private)' if info['private'] else ''}, last modified {info['last_modified']}")
    print(f"  library: {info['library_name']}  pipeline: {info['pipeline_tag']}  tags: {', '.join(info['tags'])}")
    for f in info["files"]:
        print(f"  {f['size'] if f['size'] is not None else '?':>12}  {f['path']}" + (f"  sha256 {f['sha256'][:12]}" if f["sha256"] else ""))
    return 0


def _styles(args: argparse.Namespace) -> int:
    from fauve.catalog import catalog_path, list_styles

    entries = list_styles(available_only=args.available)
    if args.json:
        print(json.dumps([e.public() for e in entries], indent=1))
        return 0
    if not entries:
        print(f"No styles in {catalog_path()}.", file=sys.stderr)
        return 0
    rows = [("id", "method", "source", "license", "title")]
    rows += [(e.id, e.method, e.source, e.license or "?", e.title) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    unavailable = sum(e.source == "unavailable" for e in entries)
    if unavailable:
        print(f"\n{unavailable} style(s) unavailable: not bundled in hub_models/, not in the HF cache, and their Hub "
              "repos are not published yet (or HF_HUB_OFFLINE is set).", file=sys.stderr)
    return 0
