"""POST bodies for the account admin's add and change forms."""


def account_form(workspace, **fields) -> dict:
    """The account add form's fields (its end-user inline empty); `fields` replace or add values."""
    form = {
        "workspace": str(workspace.pk),
        "external_id": "acct_1",
        "name": "Acme",
        "domain": "",
        "plan": "",
        "owner": "",
        "status": "active",
        "attributes": "{}",
        "users-TOTAL_FORMS": "0",
        "users-INITIAL_FORMS": "0",
        "users-MIN_NUM_FORMS": "0",
        "users-MAX_NUM_FORMS": "1000",
    }
    form.update(fields)
    return form
