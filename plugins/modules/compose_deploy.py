#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: compose_deploy
short_description: Build and deploy a Docker Compose project, or restore it to exact images
version_added: 0.1.0
description:
  - Builds the images of a Compose v2 project and brings its services up, waiting for them to be healthy.
  - Decides what changes from state that can be queried (Compose's config hashes, the image IDs of the
    running containers and fingerprints of the build contexts), so a second run with the same definition
    and sources changes nothing and recreates no container.
  - Returns the image ID each service ran before the run (RV(previous_images)), the snapshot a rollback
    restores with O(state=restored).
  - Tags each image it deployed with the deployment id and labels the containers it created with
    C(io.homeiq.deployment-id).
  - Holds a per-project lock for the whole run; a lock left by a killed run is taken over.
  - Uses the Compose v2 CLI (2.21 or newer) for compose operations and the Docker SDK for engine calls.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - Docker engine with the Compose v2 CLI plugin 2.21 or newer
  - docker (Python SDK) 7.0 or newer
options:
  project_src:
    description: Folder holding the compose files; relative O(files) and O(env_files) are read from it.
    type: path
    required: true
  project_name:
    description: Compose project name. Defaults to the C(name) of the compose file, else the folder name.
    type: str
  files:
    description: Compose files, in order. Defaults to the file Compose picks in O(project_src).
    type: list
    elements: path
  env_files:
    description:
      - Files of variables for interpolation (C(docker compose --env-file)). Their values never appear in the result.
    type: list
    elements: path
  profiles:
    description: Compose profiles to enable.
    type: list
    elements: str
  services:
    description: Deploy only these services (and what they depend on). Defaults to all services.
    type: list
    elements: str
  state:
    description:
      - V(present) builds and brings the services up.
      - V(absent) removes the project's containers and networks; volumes and images are kept.
      - V(restored) brings the services of O(restore_images) back onto exactly those image IDs, without
        building or pulling.
    type: str
    choices: [present, absent, restored]
    default: present
  build:
    description:
      - V(always) builds every service that has a build section (the build cache keeps unchanged images identical).
      - V(missing) builds only services whose image does not exist yet. V(never) builds nothing.
    type: str
    choices: [always, missing, never]
    default: always
  pull:
    description: Pull policy for services without a build section.
    type: str
    choices: [always, missing, never]
    default: missing
  recreate:
    description:
      - V(auto) recreates a container when its image or configuration changed.
      - V(always) recreates every container (the runbook's full down/up after route changes).
      - V(never) keeps existing containers.
    type: str
    choices: [auto, always, never]
    default: auto
  wait:
    description: Wait until the services run and their healthchecks pass (C(up --wait)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for health with O(wait).
    type: int
    default: 120
  timeout:
    description: Seconds any single compose call (build, up, down) may take before the run fails.
    type: int
  deployment_id:
    description:
      - Id of this deployment, used as image tag and container label. Default C(deploy-YYYYMMDD-HHMMSS) in UTC.
    type: str
  restore_images:
    description:
      - With O(state=restored), a dict of service name to full image ID (C(sha256:...)), as returned in
        RV(previous_images) or recorded in the ledger. Every image must still exist; otherwise nothing is changed.
    type: dict
  restore_tag:
    description:
      - With O(state=restored), bring every service (or those in O(services)) back onto the image tagged
        C(<service image>:<restore_tag>), such as a deployment id. Every tag must exist; otherwise nothing is changed.
      - Mutually exclusive with O(restore_images).
    type: str
  keep_deployments:
    description:
      - After the run, keep the deployment tags (C(deploy-YYYYMMDD-HHMMSS)) of the newest N deployments of each
        service's image and remove older ones. An image left without tags is deleted by the engine unless a
        container uses it. Images of running containers are always kept. Unset keeps everything.
    type: int
  lock:
    description: Hold the per-project lock for the run.
    type: bool
    default: true
  lock_timeout:
    description: Seconds to wait for a lock held by another run; V(0) fails at once naming the holder.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds after which a held lock is taken over even if its holder still seems to run.
        A lock whose holder process is gone is always taken over.
    type: int
  lock_dir:
    description:
      - Folder of the lock files. Defaults to C(/run/lock/homeiq) for root, else a folder in the user's runtime
        or state directory.
    type: path
  state_dir:
    description:
      - Folder where build fingerprints are kept, so check mode can tell whether a build would change an image.
        Defaults to C(/var/lib/homeiq/compose) for root, else C(~/.local/state/homeiq/compose).
    type: path
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is built, pulled, tagged or touched; the result says what would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: Before and after are each service's image ID, state and deployment id.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Check mode predicts a build's result from the build context's fingerprint; a base image changed under the
    same name is seen only by the real run.
  - The first deployment of containers made without this module recreates them once to add the deployment label.
seealso:
  - name: Deploy role and operator guide
    description: docs/deploy.md in the collection.
    link: https://example.invalid/homeiq/deploy/docs/deploy.md
"""

EXAMPLES = r"""
- name: Build and deploy the stack, waiting for health
  homeiq.deploy.compose_deploy:
    project_src: /srv/homeiq
    env_files:
      - release.env
  register: deployed

- name: Bring back the images the deployment replaced
  homeiq.deploy.compose_deploy:
    project_src: /srv/homeiq
    state: restored
    restore_images: "{{ deployed.previous_images }}"

- name: Full down/up after route changes, waiting up to 10 minutes for another run's lock
  homeiq.deploy.compose_deploy:
    project_src: /srv/homeiq
    recreate: always
    lock_timeout: 600
"""

RETURN = r"""
deployment_id:
  description: Id of this deployment.
  returned: always
  type: str
  sample: deploy-20261126-231500
project_name:
  description: Compose project name.
  returned: always
  type: str
  sample: homeiq
compose_version:
  description: Version of the Compose CLI used.
  returned: always
  type: str
  sample: 2.26.1
services:
  description: Each selected service after the run (predicted in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service name.
      type: str
    image:
      description: Image reference Compose uses for the service.
      type: str
    image_id:
      description: Full ID of the image the service runs (null in check mode when a build would decide it).
      type: str
    previous_image_id:
      description: Full ID of the image it ran before this run.
      type: str
    state:
      description: Container state, such as running or exited.
      type: str
    health:
      description: Healthcheck status, or null without one.
      type: str
    changed:
      description: Whether this run changed the service.
      type: bool
previous_images:
  description: Service to image ID as they were before this run changed anything; the snapshot a rollback restores.
  returned: always
  type: dict
  sample: {data-api: "sha256:4f2c..."}
current_images:
  description: Service to image ID after the run.
  returned: always
  type: dict
actions:
  description: What was done (or would be in check mode), as {what, service, ...}.
  returned: always
  type: list
  elements: dict
stack_changed:
  description: On failure, whether any container had been changed before the run stopped (false after a failed build).
  returned: failed
  type: bool
failed_services:
  description: On a failed C(up), the services not running or unhealthy.
  returned: failed
  type: list
  elements: str
lock_taken_over:
  description: The holder of a stale lock this run took over, and why.
  returned: when a stale lock was taken over
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._deploy import DeployError, Deployment


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            project_name=dict(type="str"),
            files=dict(type="list", elements="path"),
            env_files=dict(type="list", elements="path"),
            profiles=dict(type="list", elements="str"),
            services=dict(type="list", elements="str"),
            state=dict(type="str", default="present", choices=["present", "absent", "restored"]),
            build=dict(type="str", default="always", choices=["always", "missing", "never"]),
            pull=dict(type="str", default="missing", choices=["always", "missing", "never"]),
            recreate=dict(type="str", default="auto", choices=["auto", "always", "never"]),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=120),
            timeout=dict(type="int"),
            deployment_id=dict(type="str"),
            restore_images=dict(type="dict"),
            restore_tag=dict(type="str"),
            keep_deployments=dict(type="int"),
            lock=dict(type="bool", default=True),
            lock_timeout=dict(type="int", default=0),
            lock_stale_after=dict(type="int"),
            lock_dir=dict(type="path"),
            state_dir=dict(type="path"),
        ),
        mutually_exclusive=[("restore_images", "restore_tag")],
        supports_check_mode=True,
    )
    try:
        result = Deployment(module.params, check_mode=module.check_mode, warn=module.warn).run()
    except DeployError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
