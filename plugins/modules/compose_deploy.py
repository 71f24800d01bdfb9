#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: compose_deploy
short_description: Build and deploy a Docker Compose project or a stack of them, or restore them to exact images
version_added: 0.1.0
description:
  - Builds the images of a Compose v2 project and brings its services up, waiting for them to be healthy.
  - With O(projects), deploys a stack of compose projects in list order, each one healthy before the next
    starts; the first failure stops the stack and names the projects it had changed.
  - Runs Compose from O(project_src) as C(docker compose -f FILE) runs from a checkout, so relative paths in the
    compose files (C(env_file), bind mounts, build contexts) resolve from the first file's folder unless
    O(project_directory) names another.
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
    description:
      - Folder Compose runs from (its working directory), such as the root of a checkout. Relative O(files),
        O(env_files) and O(project_directory) are relative to it, also within O(projects).
    type: path
    required: true
  project_name:
    description: Compose project name. Defaults to the C(name) of the compose file, else the project directory's name.
    type: str
  files:
    description:
      - Compose files, in order. Defaults to the files Compose picks in O(project_src) on its own
        (C(compose.yaml) or its other names, and its C(compose.override.yaml) when there is one).
    type: list
    elements: path
  project_directory:
    description:
      - Compose's project directory (C(--project-directory)), relative to O(project_src) or absolute. Relative
        paths in the compose files and the C(.env) read for interpolation resolve from it.
      - Unset, it is not passed to Compose, which then uses the folder of the first of O(files) (or
        O(project_src) without O(files)), exactly as C(docker compose -f) does.
    type: str
  projects:
    description:
      - A stack of compose projects, deployed in this order; each must be running and healthy (with O(wait))
        before the next one starts, and the first failure stops the stack.
      - With O(state=restored) only the projects in O(restore_images) are restored, in reverse order;
        O(state=absent) removes the projects in reverse order.
      - Cannot be combined with the top-level O(project_name), O(files), O(env_files), O(profiles), O(services)
        or O(project_directory); give them per project. The other options apply to every project.
      - An empty list deploys the single project the top-level options describe.
    type: list
    elements: dict
    suboptions:
      name:
        description: Compose project name (C(--project-name)); the key of the project in every result and in O(restore_images).
        type: str
        required: true
      files:
        description: Compose files of the project, relative to O(project_src) or absolute.
        type: list
        elements: path
      env_files:
        description: Env files for interpolation (C(--env-file)), relative to O(project_src) or absolute.
        type: list
        elements: path
      profiles:
        description: Compose profiles to enable in this project.
        type: list
        elements: str
      services:
        description: Deploy only these services of the project. Defaults to all.
        type: list
        elements: str
      project_directory:
        description: As the top-level O(project_directory), for this project.
        type: str
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
      - "With O(projects), nested by project, C({project: {service: image ID}}), such as the RV(previous_images)
        of a failed stack run; only the projects present are restored, in reverse stack order."
    type: dict
  restore_tag:
    description:
      - With O(state=restored), bring every service (or those in O(services)) back onto the image tagged
        C(<service image>:<restore_tag>), such as a deployment id. Every tag must exist; otherwise nothing is changed.
      - With O(projects), the projects that have no image with the tag are left alone; in the others every
        service must have it.
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
    details: Before and after are each service's image ID, state and deployment id (per project for a stack).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Check mode predicts a build's result from the build context's fingerprint; a base image changed under the
    same name is seen only by the real run.
  - The first deployment of containers made without this module recreates them once to add the deployment label.
  - In a stack, each project holds its own per-project lock while it is deployed, and every project is checked
    (files, C(docker compose config), services, images to restore) before the first one is touched.
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

- name: Deploy one domain of a checkout as `docker compose -f domains/core-platform/compose.yml --env-file .env` does
  homeiq.deploy.compose_deploy:
    project_src: /srv/homeiq
    files:
      - domains/core-platform/compose.yml
    env_files:
      - .env
    profiles:
      - production

- name: Deploy a stack of domain projects in order, each healthy before the next
  block:
    - name: Deploy the stack
      homeiq.deploy.compose_deploy:
        project_src: /srv/homeiq
        projects:
          - name: homeiq-core-platform
            files:
              - domains/core-platform/compose.yml
            env_files:
              - .env
          - name: homeiq-pattern-analysis
            files:
              - domains/pattern-analysis/compose.yml
            env_files:
              - .env
      register: stack
  rescue:
    - name: Restore the projects the failed run changed, in reverse order; the others are not touched
      homeiq.deploy.compose_deploy:
        project_src: /srv/homeiq
        projects:
          - name: homeiq-core-platform
            files:
              - domains/core-platform/compose.yml
            env_files:
              - .env
          - name: homeiq-pattern-analysis
            files:
              - domains/pattern-analysis/compose.yml
            env_files:
              - .env
        state: restored
        restore_images: "{{ stack.previous_images }}"
      when: stack.stack_changed

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
  returned: for a single project
  type: str
  sample: homeiq
compose_version:
  description: Version of the Compose CLI used.
  returned: always
  type: str
  sample: 2.26.1
services:
  description: Each selected service after the run (predicted in check mode); for a stack, those of every project.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service name.
      type: str
    project:
      description: Compose project of the service (stacks only).
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
  description:
    - Service to image ID as they were before this run changed anything; the snapshot a rollback restores.
    - "For a stack, nested by project (C({project: {service: image ID}})); on failure, only the projects the run changed."
  returned: always
  type: dict
  sample: {data-api: "sha256:4f2c..."}
current_images:
  description: Service to image ID after the run; for a stack nested by project as RV(previous_images).
  returned: always
  type: dict
actions:
  description: What was done (or would be in check mode), as {what, service, ...}; for a stack each also has C(project).
  returned: always
  type: list
  elements: dict
projects:
  description: For a stack, each project this run handled, in the order it did (on failure, those that finished).
  returned: with O(projects)
  type: list
  elements: dict
  contains:
    name:
      description: Compose project name.
      type: str
    changed:
      description: Whether this run changed the project.
      type: bool
    services:
      description: The project's services after the run, as RV(services).
      type: list
      elements: dict
    actions:
      description: What was done in the project, as RV(actions).
      type: list
      elements: dict
    previous_images:
      description: Service to image ID before the run.
      type: dict
    current_images:
      description: Service to image ID after the run.
      type: dict
stack_changed:
  description:
    - On failure, whether any container had been changed before the run stopped (false after a failed build).
    - For a stack, whether any project was changed.
  returned: failed
  type: bool
failed_project:
  description: On a failed stack run, the project where it stopped.
  returned: failed with O(projects)
  type: str
changed_projects:
  description:
    - On a failed stack run, the projects it changed, in deploy order (the failing one too if it changed);
      RV(previous_images) and RV(current_images) hold exactly these.
  returned: failed with O(projects)
  type: list
  elements: str
not_started:
  description: On a failed stack run, the projects after the failing one, which were not touched.
  returned: failed with O(projects)
  type: list
  elements: str
failed_services:
  description: On a failed C(up), the services not running, unhealthy, or still starting when Compose gave up.
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
from ansible_collections.homeiq.deploy.plugins.module_utils._stack import STACK_PROJECT_SPEC, Stack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            project_name=dict(type="str"),
            files=dict(type="list", elements="path"),
            env_files=dict(type="list", elements="path"),
            profiles=dict(type="list", elements="str"),
            services=dict(type="list", elements="str"),
            project_directory=dict(type="str"),
            projects=dict(type="list", elements="dict", options=STACK_PROJECT_SPEC),
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
        runner = Stack if module.params["projects"] else Deployment
        result = runner(module.params, check_mode=module.check_mode, warn=module.warn).run()
    except DeployError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
