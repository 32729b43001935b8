    let env = TestEnv::start().await?;
    env.install_crd::<{= kind =}>().await?;
    let webhooks = opkit::webhook::Webhooks::new("{= name =}").{= webhook =}::<{= kind =}>({= handler =});
    // Serves it over HTTPS and registers it with the API server until dropped.
    let _server = webhooks.start_local(&env.client()).await?;

    opkit::manifests::apply_yaml(&env.client(), "test", SAMPLE).await?;
    let api: Api<{= kind =}> = Api::{% if namespaced %}namespaced(env.client(), "default"){% else %}all(env.client()){% endif %};
