"""Parse's GraphQL guide, continued: nested and relational queries, users, cloud code.

Verbatim, as ``parse_guide.py`` (same source and rules); split only to keep modules short.
"""

from __future__ import annotations

NESTED_QUERY = "\n".join(
    [
        "query aNestedQuery {",
        "  countries(where: { ",
        '    name: { matchesRegex: "Ma", options: "i" }',
        "  }) {",
        "    edges {",
        "      node {",
        "        name",
        "        cities(where: { ",
        '          name: { matchesRegex: "pha", options: "i"} ',
        "        }) {",
        "          edges {",
        "            node {",
        "              name",
        "            }",
        "          }",
        "        }",
        "      }",
        "    }",
        "  }",
        "}",
    ]
)
NESTED_QUERY_RESPONSE = {
    "countries": {
        "edges": [{"node": {"name": "Mars", "cities": {"edges": [{"node": {"name": "Alpha"}}]}}}]
    }
}

PARENT_RELATION = (
    """# GraphQL
{
  countries(
    where: {
      cities: {
        have: {
          peoplesNumber: { greaterThan: 20000 }
          streets: {
            have: {
              name: { matchesRegex: "rue", options: "i" }
              houses: { have: { name: { equalTo: "Parse Members" } } }
            }
          }
        }
      }
    }
  ) {
    edges {
      node {
        name
        cities {
          edges {
            node {
              name
              peoplesNumber
              streets {
                edges {
                  node {
                    name
                    houses {
                      edges {
                        node {
                          name
                        }
"""
    # The guide prints "... too many brackets here" and one "}" here; the brackets it means:
    + "                      }\n                    }\n                  }\n                }\n"
    + "              }\n            }\n          }\n        }\n      }\n    }\n  }\n}"
)
PARENT_RELATION_RESPONSE_PATH = ("France", "Toulouse", 400000, "rue jean jaures", "Parse Members")

CHILD_RELATION = "\n".join(
    [
        "# GraphQL",
        "{",
        "  houses(",
        "    where: {",
        "      street: {",
        "        have: {",
        "          city: { ",
        "            have: { ",
        "              country: { ",
        "                have: { ",
        '                  name: { equalTo: "France" } ',
        "                } ",
        "              } ",
        "            } ",
        "          }",
        "        }",
        "      }",
        "    }",
        "  ) {",
        "    edges {",
        "      node {",
        "        name",
        "        street {",
        "          name",
        "          city {",
        "            name",
        "            country {",
        "              name",
        "            }",
        "          }",
        "        }",
        "      }",
        "    }",
        "  }",
        "}",
        "",
    ]
)
CHILD_RELATION_RESPONSE = {
    "houses": {
        "edges": [
            {
                "node": {
                    "name": "Parse Members",
                    "street": {
                        "name": "rue jean jaures",
                        "city": {"name": "Toulouse", "country": {"name": "France"}},
                    },
                }
            }
        ]
    }
}

# -- Users --------------------------------------------------------------------------------------
SIGN_UP = """# GraphQL
mutation signUp {
  signUp(
    input: {
      fields: {
        username: "johndoe"
        password: "ASuperStrongPassword"
        email: "john.doe@email.com"
      }
    }
  ) {
    viewer {
      sessionToken
      user {
        username
        email
      }
    }
  }
}"""
JOHNDOE = {"username": "johndoe", "email": "john.doe@email.com"}

LOG_IN = """# GraphQL
mutation logIn {
  logIn(input: { username: "johndoe", password: "ASuperStrongPassword" }) {
    viewer {
      sessionToken
      user {
        username
        email
      }
    }
  }
}"""

LOG_IN_WITH = """# GraphQL
mutation LoginWithFacebook {
  logInWith(
    input: {
      authData: {
        facebook: {
          id: "user's Facebook id number as a string"
          access_token: "Facebook access token for the user"
          expiration_date: "token expiration date"
        }
      }
      fields: { email: "a.new@user.com" }
    }
  ) {
    viewer {
      sessionToken
      user {
        id
        email
      }
    }
  }
}"""

VIEWER = """# GraphQL
query viewer {
  viewer {
    sessionToken
    user {
      username
      email
    }
  }
}"""

LOG_OUT = """# GraphQL
mutation logOut {
  logOut(input: { clientMutationId: "logOut" }) {
    clientMutationId
    viewer {
      user {
        username
        email
      }
    }
  }
}
"""
LOG_OUT_RESPONSE = {"logOut": {"clientMutationId": "logOut", "viewer": {"user": JOHNDOE}}}

RESET_PASSWORD = """# GraphQL
mutation resetPassword {
  resetPassword(input: { email: "email@email.email" }) {
    ok
  }
}"""

# -- Cloud code ---------------------------------------------------------------------------------
CUSTOM_SCHEMA = """# schema.graphql
extend type Query {
  hello: String! @resolve
}

# schema.graphql
extend type Mutation {
  addToCart(id: ID!): CartItem! @resolve
}
"""

HELLO = """query hello {
  hello
}"""

ADD_TO_CART = """mutation addItemToCart {
  addToCart(id: "SXRlbTpEbDVjZmFWclRI") {
    id
    quantity
  }
}"""
ADD_TO_CART_RESPONSE = {"addToCart": {"id": "Q2FydEl0ZW06akVVTHlGZnVpQw==", "quantity": 1}}
