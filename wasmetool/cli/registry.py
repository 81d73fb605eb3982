"""`wasmetool login`, `logout`, `push`, `pull`: move filters between the store and registries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from wasmetool.cli.output import check_output, human_size, output_option, print_json
from wasmetool.errors import WasmetoolError

FORMAT_HELP = (
    "Image format: wasme (Istio's OCI-wasm variant), oci or docker (the 'compat' "
    "variants: a tar+gzip layer holding plugin.wasm). Default: the stored image's "
    "format, which is wasme for everything wasmetool builds."
)


def _plain_http() -> Any:
    return typer.Option(
        False, "--plain-http",
        help="Talk plain HTTP. localhost/127.0.0.1 registries use it on their own when "
             "they do not speak TLS.")


def _insecure() -> Any:
    return typer.Option(False, "--insecure",
                        help="Skip TLS certificate verification (self-signed test registries only).")


def _ca_file() -> Any:
    return typer.Option(None, "--ca-file", help="PEM file of a private CA to trust for this registry.")


def _username() -> Any:
    return typer.Option(None, "--username", "-u", help="Registry user for this command only.")


def _password() -> Any:
    return typer.Option(None, "--password", "-p",
                        help="Registry password for this command only (see login --password-stdin).")


def _transport(plain_http: bool, insecure: bool, ca_file: Path | None) -> Any:
    from wasmetool.registry.client import TransportOptions

    if plain_http and (insecure or ca_file):
        raise WasmetoolError("--plain-http cannot be combined with --insecure or --ca-file",
                             "TLS options only apply to HTTPS registries")
    return TransportOptions(plain_http=plain_http, insecure=insecure, ca_file=ca_file)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _warn_password_flag() -> None:
    """As docker does: a password in argv is visible to others and stays in shell history."""
    _warn("--password on the command line is insecure (other users can see it in the process "
          "list, and it stays in your shell history); use --password-stdin")


def login(
    server: str = typer.Argument("docker.io", help="Registry host[:port] (default docker.io)."),
    username: str | None = typer.Option(None, "--username", "-u", help="Registry user."),
    password: str | None = typer.Option(
        None, "--password", "-p", help="Password or token (prefer --password-stdin)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password or token from standard input."),
    plain_http: bool = _plain_http(),
    insecure: bool = _insecure(),
    ca_file: Path | None = _ca_file(),  # noqa: B008
    output: str = output_option(),
) -> None:
    """Check credentials against a registry, then save them.

    The registry must accept the credentials (Basic or Bearer-token auth) before
    anything is saved; a registry that allows anonymous access never asks, and
    login says the credentials were saved unverified. They go to the system
    keyring; without one, to an encrypted file when WASMETOOL_KEYRING_PASSPHRASE
    is set, else to a 0600 plaintext file (with a warning each time it is
    written or used). Docker's ~/.docker/config.json is read by push/pull but
    never written. Passwords are never printed, not even with -v.

    Example: echo "$TOKEN" | wasmetool login ghcr.io -u me --password-stdin
    """
    from wasmetool.registry.credentials import Credentials
    from wasmetool.registry.login import login as do_login

    check_output(output)
    transport = _transport(plain_http, insecure, ca_file)
    if password is not None and password_stdin:
        raise WasmetoolError("--password and --password-stdin are exclusive", "use one of them")
    if not username:
        if not sys.stdin.isatty() or password_stdin:
            raise WasmetoolError("no username given", "pass -u USER")
        username = typer.prompt("Username")
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise WasmetoolError("no password given", "pass --password-stdin and pipe it in")
        password = typer.prompt("Password", hide_input=True)
    else:
        _warn_password_flag()
    if not password:
        raise WasmetoolError("the password is empty", "pass the password or token to use")
    result = do_login(server, Credentials(username, password), transport)
    if result.saved.plaintext_file:
        from wasmetool.registry.credentials import plaintext_warning

        _warn(plaintext_warning(result.saved.location))
    if output == "json":
        print_json({"server": result.server, "username": username, "checked": result.checked,
                    "anonymousAccess": not result.checked, "savedIn": result.saved.location})
    elif result.checked:
        print(f"Login succeeded for {username} on {result.server} "
              f"(saved in {result.saved.location})")
    else:
        print(f"{result.server} allows anonymous access and never asked for credentials, so "
              f"they were not checked; saved unverified for {username} in {result.saved.location}")


def logout(
    server: str = typer.Argument("docker.io", help="Registry host[:port] (default docker.io)."),
) -> None:
    """Forget the credentials `wasmetool login` saved for a registry, wherever they are.

    Removes them from the system keyring, the encrypted file and the plaintext
    file; says if Docker's config.json still holds some (remove those with
    'docker logout').

    Example: wasmetool logout ghcr.io
    """
    from wasmetool.registry.login import logout as do_logout

    result = do_logout(server)
    if result.removed:
        print(f"Removed the saved credentials for {result.server} from "
              f"{', '.join(result.removed_from)}")
    else:
        print(f"Not logged in to {result.server}")
    if result.docker_has_credentials:
        _warn(f"Docker's config.json still has credentials for {result.server}, which push/pull "
              "will use; remove them with 'docker logout'")


def push(
    ref: str = typer.Argument(..., help="Image in the local store, e.g. ghcr.io/me/filter:v1."),
    target: str | None = typer.Argument(None, help="Where to push it (default: REF itself)."),
    image_format: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    username: str | None = _username(),
    password: str | None = _password(),
    plain_http: bool = _plain_http(),
    insecure: bool = _insecure(),
    ca_file: Path | None = _ca_file(),  # noqa: B008
    output: str = output_option(),
) -> None:
    """Push an image from the local store to an OCI registry.

    Blobs the registry already has are not uploaded again. The pushed manifest
    is loadable by Istio's WasmPlugin and Envoy Gateway in all three formats.

    Example: wasmetool push localhost:5000/me/filter:v1 --format oci
    """
    from wasmetool.registry.push import push_image
    from wasmetool.store import Store

    check_output(output)
    if password is not None:
        _warn_password_flag()
    result = push_image(Store.open(), ref, target, image_format=image_format, username=username,
                        password=password, transport=_transport(plain_http, insecure, ca_file))
    if output == "json":
        print_json(result.to_dict())
        return
    mounted = f", {result.mounted} mounted from another repository" if result.mounted else ""
    print(f"pushed {result.ref.familiar} ({result.format}; {result.uploaded} blob(s) uploaded, "
          f"{result.skipped} already present{mounted}, {human_size(result.bytes_sent)} sent)")
    print(f"digest: {result.digest} (manifest)")


def pull(
    ref: str = typer.Argument(..., help="Image to pull: NAME[:TAG] or NAME@sha256:DIGEST."),
    username: str | None = _username(),
    password: str | None = _password(),
    plain_http: bool = _plain_http(),
    insecure: bool = _insecure(),
    ca_file: Path | None = _ca_file(),  # noqa: B008
    output: str = output_option(),
) -> None:
    """Pull an image (wasme, oci or docker format) from a registry into the local store.

    Every blob and the manifest are checked against their digests before the
    store changes; a tampered image is refused and nothing is written.

    Example: wasmetool pull localhost:5000/me/filter:v1
    """
    from wasmetool.registry.pull import pull_image
    from wasmetool.store import Store

    check_output(output)
    if password is not None:
        _warn_password_flag()
    result = pull_image(Store.open(), ref, username=username, password=password,
                        transport=_transport(plain_http, insecure, ca_file))
    if output == "json":
        print_json(result.to_dict())
        return
    print(f"pulled {result.ref.familiar} ({result.format}, {human_size(result.wasm_size)}; "
          f"{result.downloaded} blob(s) downloaded, {result.reused} already stored)")
    print(f"digest: {result.digest} (manifest)")


def print_remote_tags(repo: str, output: str) -> None:
    """`wasmetool list --remote REPO`: the tags of a registry repository.

    Credentials come from `wasmetool login` or Docker's config.json; loopback
    registries are reached over plain HTTP unless they speak TLS.
    """
    from wasmetool.cli.output import print_table
    from wasmetool.oci.reference import parse_reference
    from wasmetool.registry.remote import list_remote_tags

    check_output(output)
    ref = parse_reference(repo)
    tags = list_remote_tags(ref)
    if output == "json":
        print_json([{"ref": str(ref.with_tag(tag)), "name": ref.familiar_name, "tag": tag}
                    for tag in tags])
        return
    print_table(["NAME", "TAG"], [[ref.familiar_name, tag] for tag in tags])


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("push")(push)
    app.command("pull")(pull)
