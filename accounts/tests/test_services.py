import pytest
from django.contrib.auth import get_user_model

from accounts.roles import Role
from accounts.selectors import user_roles
from accounts.services import user_roles_from_claims, user_roles_set

ROLE_MAP = {"Koe.Employee": "employee", "Koe.Auditor": "auditor", "Koe.Broken": "no_such_role"}


def test_user_roles_from_claims_maps_known_roles_and_ignores_the_rest():
    claims = {"roles": ["Koe.Employee", "Koe.Auditor", "Other.Role", "Koe.Broken"]}
    assert user_roles_from_claims(claims=claims, role_map=ROLE_MAP) == {Role.EMPLOYEE, Role.AUDITOR}


@pytest.mark.parametrize("raw", [None, [], "", 42, {"Koe.Employee": True}])
def test_user_roles_from_claims_without_a_usable_roles_claim_gives_no_role(raw):
    assert user_roles_from_claims(claims={"roles": raw}, role_map=ROLE_MAP) == set()


def test_user_roles_from_claims_accepts_a_single_string():
    assert user_roles_from_claims(claims={"roles": "Koe.Employee"}, role_map=ROLE_MAP) == {
        Role.EMPLOYEE
    }


@pytest.mark.django_db
def test_user_roles_set_keeps_groups_that_are_not_koe_roles():
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("rin")
    other = Group.objects.create(name="finance")
    user.groups.add(other)
    user_roles_set(user=user, roles=[Role.AUDITOR])
    assert user_roles(user=user) == {Role.AUDITOR}
    assert user.groups.filter(name="finance").exists()


@pytest.mark.django_db
def test_inactive_users_hold_no_roles():
    user = get_user_model().objects.create_user("sora")
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    user.is_active = False
    assert user_roles(user=user) == frozenset()
