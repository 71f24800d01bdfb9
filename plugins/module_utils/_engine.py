# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the engine client, a thin layer over the Docker SDK.

Image IDs are the engine's full IDs (`sha256:...`) everywhere in the collection; this is the
one place that asks the engine about images and containers, so errors read the same everywhere.
"""
from __future__ import annotations

try:
    import docker
    from docker import errors as docker_errors
    HAS_DOCKER_SDK = True
    DOCKER_SDK_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    docker = None
    docker_errors = None
    HAS_DOCKER_SDK = False
    DOCKER_SDK_ERROR = str(exc)


class EngineError(Exception):
    """The engine could not be reached or refused a call; one line a person can act on."""


def _unreachable(exc):
    return EngineError(f"the Docker engine is not reachable ({str(exc).splitlines()[0][:200]}): "
                       "start dockerd or point DOCKER_HOST at a running engine")


class Engine:
    def __init__(self, timeout=60):
        if not HAS_DOCKER_SDK:
            raise EngineError("the Docker SDK for Python is missing on this host: pip install docker "
                              f"({DOCKER_SDK_ERROR})")
        try:
            self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except Exception as exc:
            raise _unreachable(exc)

    def version(self):
        return self.client.version().get("Version", "unknown")

    def image_id(self, ref):
        """The full image ID of a reference or ID, or None when the engine has no such image."""
        try:
            return self.client.images.get(ref).id
        except docker_errors.ImageNotFound:
            return None
        except docker_errors.NotFound:
            return None
        except docker_errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise EngineError(f"inspecting image {ref} failed: {exc.explanation or exc}")
        except Exception as exc:
            raise _unreachable(exc)

    def tag(self, image_id, repository, tag):
        try:
            ok = self.client.api.tag(image_id, repository, tag, force=True)
        except docker_errors.APIError as exc:
            raise EngineError(f"tagging {image_id} as {repository}:{tag} failed: {exc.explanation or exc}")
        except Exception as exc:
            raise _unreachable(exc)
        if not ok:
            raise EngineError(f"tagging {image_id} as {repository}:{tag} failed")

    def repository_tags(self, repository):
        """Every tag of `repository` on this engine."""
        try:
            images = self.client.images.list(name=repository)
        except Exception as exc:
            raise _unreachable(exc)
        return sorted({ref.rpartition(":")[2] for img in images for ref in img.tags if ref.rpartition(":")[0] == repository})

    def untag(self, ref):
        """Removes one tag; the engine deletes the image only when no tag and no container is left."""
        try:
            self.client.images.remove(ref, noprune=False)
        except docker_errors.NotFound:
            pass
        except docker_errors.APIError as exc:
            if exc.status_code != 409:       # in use by a stopped container: keep it
                raise EngineError(f"removing {ref} failed: {exc.explanation or exc}")

    def container(self, container_id):
        """State of one container: image ID, labels, state and health, exactly as the engine has them."""
        try:
            attrs = self.client.api.inspect_container(container_id)
        except docker_errors.NotFound:
            return None
        except Exception as exc:
            raise _unreachable(exc)
        state = attrs.get("State") or {}
        return {
            "id": attrs.get("Id"),
            "name": (attrs.get("Name") or "").lstrip("/"),
            "image_id": attrs.get("Image"),
            "labels": (attrs.get("Config") or {}).get("Labels") or {},
            "state": state.get("Status"),
            "health": (state.get("Health") or {}).get("Status"),
        }
