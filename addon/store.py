"""What `./run.sh login` keeps: the hub's settings, the hub token and the bridge's own (local) token, as one typed
`Login`, in one JSON file only its owner can read. Only persistence here: no mitmproxy, no network.

The file: `$JUPYTERHUB_BRIDGE_HOME/login.json`, else `$XDG_CONFIG_HOME/jupyterhub-bridge/login.json`
(`~/.config/...`), for the default profile; `<that folder>/profiles/<name>/login.json` for another profile
(addon/core/profiles.py); its shape is `Login`'s, field for field. Like ssh, the bridge refuses a file or folder that is
not the user's own, a folder that is a symbolic link or that others may write to, and a file others can read.
"""

import json
import os
import stat
import tempfile
from pathlib import Path

from addon.core import profiles
from addon.core.errors import SettingError
from addon.core.invocation import RUN
from addon.core.login_record import Login
from addon.core.login_record import from_json
from addon.core.login_record import to_json

try:
    import fcntl
except ImportError:  # Windows: no flock; the stored login is not expected to work there (docs/install.md, Where it works)
    fcntl = None

FILE_NAME = "login.json"
PROFILES = "profiles"  # <the bridge's folder>/profiles/<name>/login.json: the profiles other than default
DEFAULT_PROFILE_NAME = "default-profile"  # the saved default profile's name, in the bridge's folder
LOCK_NAME = "login.lock"  # beside the file: whoever holds flock on it may read, change and write the login
def home_folder(environ=os.environ) -> Path | None:
    """The bridge's folder: the default profile's login, the saved default profile, the other profiles' folders.
    None for an environment without a home (as the tests give): then nothing is stored, rather than the login of
    whoever runs them."""
    if home := environ.get("JUPYTERHUB_BRIDGE_HOME", "").strip():
        return Path(home).expanduser()
    if config := environ.get("XDG_CONFIG_HOME", "").strip():
        return Path(config).expanduser() / "jupyterhub-bridge"
    if home := environ.get("HOME", "").strip():
        return Path(home) / ".config" / "jupyterhub-bridge"
    return None


def saved_profile(environ=os.environ) -> str | None:
    """The default profile `profile use` saved; None when there is none."""
    if (home := home_folder(environ)) is None:
        return None
    try:
        return (home / DEFAULT_PROFILE_NAME).read_text().strip() or None
    except FileNotFoundError:
        return None


def profile(environ=os.environ) -> str:
    """The profile a command uses (addon/core/profiles.py: --profile > environment > saved default > default)."""
    return profiles.chosen(environ, saved_profile(environ))


def folders(environ=os.environ, name: str | None = None) -> list[Path]:
    """The folders from the bridge's own down to the profile's (`name`, else the one in use); [] without a home.
    The default profile's is the bridge's folder itself: a login of before profiles is the default profile."""
    home = home_folder(environ)
    if home is None:
        return []
    name = profile(environ) if name is None else name
    return [home] if name == profiles.DEFAULT else [home, home / PROFILES, home / PROFILES / name]


def folder(environ=os.environ, name: str | None = None) -> Path | None:
    """The folder of a profile's login file (and of what goes with it: the lock, a pinned certificate)."""
    return (folders(environ, name) or [None])[-1]


def path(environ=os.environ, name: str | None = None) -> Path | None:
    return None if (where := folder(environ, name)) is None else where / FILE_NAME


def profile_names(environ=os.environ) -> list[str]:
    """The profiles that hold a login, `default` first."""
    home = home_folder(environ)
    if home is None:
        return []
    others = sorted(p.parent.name for p in (home / PROFILES).glob(f"*/{FILE_NAME}")
                    if profiles.NAME.fullmatch(p.parent.name))
    return ([profiles.DEFAULT] if (home / FILE_NAME).exists() else []) + others


def save_profile(name: str, environ=os.environ) -> Path:
    """Save `name` as the default profile (`profile use`): a small file in the bridge's private folder."""
    home = make_folders(folders(environ, profiles.DEFAULT))
    target = home / DEFAULT_PROFILE_NAME
    fd, temporary = tempfile.mkstemp(dir=home, prefix=".profile-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(name + "\n")
    os.replace(temporary, target)
    return target


def check_folder(where: Path, private: bool = True) -> None:
    """Refuse a folder that is a symbolic link, is not the user's, or that others may write to (they could swap
    the file); the message says the command that fixes it."""
    try:
        found = os.lstat(where)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise SettingError(f"{where}, the folder of your login file, is a symbolic link or not a folder: run "
                           f"'rm {where}', then {RUN} login.")
    if found.st_uid != os.getuid():
        raise SettingError(f"{where}, the folder of your login file, belongs to another user (uid {found.st_uid}): "
                           f"run 'sudo chown {os.getuid()} {where}', or set JUPYTERHUB_BRIDGE_HOME to a folder "
                           "of yours.")
    if private and found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SettingError(f"{where}, the folder of your login file, is writable by others (mode "
                           f"{stat.filemode(found.st_mode)}): run 'chmod 700 {where}'.")


def check_file(file: Path, found: os.stat_result, private: bool = True) -> None:
    if found.st_uid != os.getuid():
        raise SettingError(f"{file} belongs to another user (uid {found.st_uid}), not to you: run 'rm {file}' "
                           f"(as root if need be), then {RUN} login.")
    if private and found.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingError(f"{file} holds your hub token and others can read it (mode "
                           f"{stat.filemode(found.st_mode)}): run 'chmod 600 {file}', or '{RUN} logout' and "
                           "log in again.")


def load(environ=os.environ, private: bool = True, name: str | None = None) -> Login:
    """The stored login, Login() when there is none. Raises SettingError (with the fix) for a file or folder
    that is not the user's own, a file others can read or a folder others can write to (unless private=False:
    logout revokes its token), or one that is not the bridge's JSON. `name`: another profile's (profile list)."""
    file = path(environ, name)
    if file is None:
        return Login()
    for where in folders(environ, name):
        check_folder(where, private)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Login()
    except OSError as e:
        raise SettingError(f"{file}: cannot read it ({e.strerror}).") from e
    with os.fdopen(fd) as f:
        check_file(file, os.fstat(f.fileno()), private)
        text = f.read()
    try:
        return from_json(json.loads(text))
    except (ValueError, TypeError, KeyError):
        raise SettingError(f"{file} is not the bridge's login file: run '{RUN} logout', then "
                           f"'{RUN} login'.") from None


def make_folders(chain: list[Path]) -> Path:
    """Make the folders from the bridge's own down to a profile's, each the user's own (not a link) and 0700; the
    last one."""
    if not chain:
        raise SettingError("HOME is not set: set it, or JUPYTERHUB_BRIDGE_HOME, to the folder for the login file.")
    for where in chain:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_folder(where, private=False)  # a folder of the user's own, not a link: then made private
        os.chmod(where, 0o700)
    return chain[-1]


def save(login: Login, environ=os.environ) -> Path:
    """Write the login at once (a reader sees the old file or the new one, never half of one): a 0600 temporary
    file in a 0700 folder, then os.replace."""
    target = make_folders(folders(environ)) / FILE_NAME
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".login-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_json(login), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def stamp(environ=os.environ) -> tuple[int, int, int] | None:
    """What tells one version of the file from the next (save() makes a new file each time): compared every few
    seconds by a running bridge, a stat rather than a read. None when there is no file."""
    file = path(environ)
    try:
        found = os.stat(file) if file else None
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size) if found else None


def open_lock(environ=os.environ) -> int:
    """The login's lock file, opened (0600, in the login's private folder); closing it releases the lock. Two
    bridges on one login take it in turn to re-read the file, renew the token and write its successor, so that
    neither revokes the token the other has just stored."""
    chain = folders(environ)
    if not chain:
        raise SettingError("HOME is not set: set it, or JUPYTERHUB_BRIDGE_HOME, to the folder for the login file.")
    for where in chain:
        check_folder(where)
    return os.open(chain[-1] / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)


def take_lock(fd: int) -> bool:
    """Try once to take the lock of open_lock (never waits: the caller decides how long to try)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def delete(environ=os.environ) -> bool:
    """Remove the stored login; False when there was none."""
    file = path(environ)
    if file is None:
        return False
    try:
        file.unlink()
    except FileNotFoundError:
        return False
    return True


def origin_lines(login: Login, environ, overrides: dict[str, str], env_of: dict[str, str], hub_token: str | None,
                 local_token: str) -> list[str]:
    """For the banner: the settings that came from --set or from the stored login rather than the environment,
    and when the stored hub token expires."""
    lines = [f"  set with --set: {', '.join(sorted(overrides))}"] if overrides else []
    taken = [env_of[name] for name in login.values() if name not in overrides and env_of[name] not in environ]
    if record := login.holds(hub_token):
        taken.append(f"the hub token ({record.expiry_text()})")
    if local_token and local_token == login.local_token:
        taken.append("the bridge's token")
    if taken:
        lines.append(f"  from {path(environ)} ({RUN} login): {', '.join(taken)}")
    return lines

